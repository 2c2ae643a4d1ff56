"""The generated part h_omega: shapes, the weights contract, per-sample vs batch normalisation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from phn.models.norm import PerSampleNorm2d
from phn.models.resnet import latent_shape
from phn.models.target import GeneratedResNet

SUFFIX_COUNTS = {0: 1_093_140, 1: 1_093_140 - 580 - 14_560, 2: 205_600 + 820_800, 3: 820_800, 4: 0}


def random_weights(target: GeneratedResNet, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """One task's omega: fan-in scaled normal weights, gamma around 1."""
    g = torch.Generator().manual_seed(0)
    out = {}
    for name, shape in target.param_shapes.items():
        fan_in = shape[1:].numel() if len(shape) > 1 else 1
        w = torch.randn(shape, generator=g, dtype=dtype) / fan_in**0.5
        out[name] = w + 1.0 if target.param_kinds[name] == "norm_weight" else w
    return out


@pytest.mark.parametrize("k", range(5))
@pytest.mark.parametrize("num_classes", [2, 5, 10, 100])
def test_shapes_and_counts(k: int, num_classes: int) -> None:
    target = GeneratedResNet(k, num_classes)
    assert target.num_generated() == SUFFIX_COUNTS[k] + 161 * num_classes
    z = torch.randn(2, *latent_shape(k))
    assert target(z, random_weights(target)).shape == (2, num_classes)


def test_names_and_kinds_are_readable() -> None:
    target = GeneratedResNet(2, 10)
    assert next(iter(target.param_shapes)) == "stage3.0.conv1.weight"
    assert target.param_shapes["stage3.0.conv1.weight"] == (80, 40, 3, 3)
    assert target.param_kinds["stage3.0.conv1.weight"] == "conv"
    assert target.param_kinds["stage3.0.bn1.weight"] == "norm_weight"
    assert target.param_kinds["stage3.0.shortcut.conv.weight"] == "conv"
    assert target.param_kinds["classifier.weight"] == "linear_weight"
    assert target.param_kinds["classifier.bias"] == "linear_bias"
    assert "stem.conv.weight" in GeneratedResNet(0, 10).param_shapes
    assert list(GeneratedResNet(4, 10).param_shapes) == ["classifier.weight", "classifier.bias"]
    assert not any(p.requires_grad for p in target.parameters())


def test_given_weights_are_used_and_differentiable() -> None:
    target = GeneratedResNet(3, 4)
    weights = {n: w.requires_grad_() for n, w in random_weights(target).items()}
    z = torch.randn(3, 80, 8, 8)
    out = target(z, weights)
    with torch.no_grad():  # reference: load the weights into the placeholders
        for name, p in target.named_parameters():
            p.copy_(weights[name])
    torch.testing.assert_close(out, target(z))
    out.sum().backward()
    assert all(w.grad is not None for w in weights.values())


def test_per_sample_norm_layer_equals_batch_norm_on_single_samples() -> None:
    x = torch.randn(5, 6, 4, 4, dtype=torch.float64) * 3 + 1
    norm = PerSampleNorm2d(6).double()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.normal_()
    ref = torch.cat([F.batch_norm(x[i : i + 1], None, None, norm.weight, norm.bias, training=True) for i in range(5)])
    torch.testing.assert_close(norm(x), ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("k", [0, 3])
def test_per_sample_default_matches_per_sample_reference(k: int) -> None:
    """The authors run BN without running stats under a per-sample vmap: each sample is a batch of 1."""
    per_sample = GeneratedResNet(k, 5, norm="per_sample").double()
    batch = GeneratedResNet(k, 5, norm="batch").double()
    weights = random_weights(per_sample, torch.float64)
    hw = 16 if k == 0 else 8
    z = torch.randn(4, latent_shape(k)[0], hw, hw, dtype=torch.float64)
    ref = torch.cat([batch(z[i : i + 1], weights) for i in range(4)])  # F.batch_norm on a batch of 1
    vmapped = torch.func.vmap(lambda zi: batch(zi[None], weights)[0])(z)  # the authors' per-sample vmap
    out = per_sample(z, weights)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(out, vmapped, atol=1e-6, rtol=0)
    # and a sample's logits do not depend on the rest of its batch
    torch.testing.assert_close(per_sample(z[:1], weights), out[:1], atol=1e-6, rtol=0)


def test_batch_norm_option_uses_batch_statistics() -> None:
    target = GeneratedResNet(3, 5, norm="batch").double().eval()
    weights = random_weights(target, torch.float64)
    z = torch.randn(6, 80, 8, 8, dtype=torch.float64)
    full = target(z, weights)
    assert not torch.allclose(target(z[:3], weights), full[:3])  # depends on the batch, also in eval
    assert not torch.allclose(GeneratedResNet(3, 5).double()(z, weights), full)
