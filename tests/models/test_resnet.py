"""Slim ResNet-18: parameter counts (Appendix A.1), shapes, the split at freeze depth k."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from phn.models.resnet import (
    MultiHeadClassifier, SlimResNet18, build_prefix, freeze_, latent_shape, num_prefix_parts, recalibrate_bn_,
)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_part_parameter_counts() -> None:
    model = SlimResNet18(num_classes=10, num_tasks=1)
    assert [n_params(part) for part in model.stages] == [580, 14_560, 51_600, 205_600, 820_800]
    assert sum(n_params(part) for part in model.stages) == 1_093_140


@pytest.mark.parametrize("num_classes", [2, 5, 10, 100])
def test_classifier_counts_and_output_shapes(num_classes: int) -> None:
    model = SlimResNet18(num_classes=num_classes, num_tasks=3)
    assert n_params(model.classifier) == 3 * 161 * num_classes
    assert model(torch.randn(2, 3, 32, 32), task_id=2).shape == (2, num_classes)


def test_layout_names_and_convs_without_bias() -> None:
    model = SlimResNet18()
    names = dict(model.named_parameters())
    assert "stage3.0.conv1.weight" in names and "stage2.0.shortcut.conv.weight" in names
    assert "stage1.0.shortcut.conv.weight" not in names  # shape does not change in stage 1
    assert all(m.bias is None for m in model.modules() if isinstance(m, nn.Conv2d))
    strides = [getattr(model, f"stage{i}")[0].conv1.stride for i in range(1, 5)]
    assert strides == [(1, 1), (2, 2), (2, 2), (2, 2)]


def test_feature_shapes_and_latent_shape() -> None:
    model = SlimResNet18().eval()
    x = torch.randn(2, 3, 32, 32)
    expected = [(20, 32, 32), (20, 32, 32), (40, 16, 16), (80, 8, 8), (160, 4, 4)]
    for end, shape in enumerate(expected, start=1):
        assert model.features(x, 0, end).shape[1:] == shape
    assert [latent_shape(k) for k in range(5)] == [(3, 32, 32), (20, 32, 32), (40, 16, 16), (80, 8, 8), (160, 4, 4)]
    assert latent_shape(4, input_hw=64) == (160, 8, 8)


@pytest.mark.parametrize("k", range(5))
def test_split_prefix_matches_latent_shape_and_resumes(k: int) -> None:
    model = SlimResNet18(num_classes=5, num_tasks=2).eval()
    prefix, suffix = model.split(k)
    assert len(prefix) == num_prefix_parts(k) and len(prefix) + len(suffix) == 5
    x = torch.randn(3, 3, 32, 32)
    z = prefix(x)
    assert z.shape[1:] == latent_shape(k)
    torch.testing.assert_close(model.forward_from(z, len(prefix), 1), model(x, 1))


def test_depth_zero_prefix_is_empty_identity() -> None:
    prefix = build_prefix(0)
    x = torch.randn(2, 3, 32, 32)
    assert len(prefix) == 0 and n_params(prefix) == 0
    assert torch.equal(prefix(x), x)


def test_build_prefix_counts_names_and_norms() -> None:
    prefix = build_prefix(2)
    assert n_params(prefix) == 580 + 14_560 + 51_600
    assert [name for name, _ in prefix.named_children()] == ["stem", "stage1", "stage2"]
    running = [m for m in prefix.modules() if isinstance(m, nn.BatchNorm2d)]
    assert running and all(m.track_running_stats for m in running)
    batch = [m for m in build_prefix(2, prefix_norm="batch").modules() if isinstance(m, nn.BatchNorm2d)]
    assert batch and not any(m.track_running_stats for m in batch)


def test_freeze_turns_off_gradients_and_bn_updates() -> None:
    prefix = freeze_(build_prefix(1))
    assert not prefix.training and not any(p.requires_grad for p in prefix.parameters())
    before = {k: v.clone() for k, v in prefix.state_dict().items()}
    prefix(torch.randn(4, 3, 32, 32))
    assert all(torch.equal(before[k], v) for k, v in prefix.state_dict().items())


def test_multi_head_classifier_uses_the_task_head() -> None:
    clf = MultiHeadClassifier(in_features=160, num_classes=4, num_tasks=3)
    z = torch.randn(5, 160)
    assert torch.equal(clf(z, 1), clf.heads[1](z))
    assert not torch.equal(clf(z, 1), clf(z, 2))


def test_recalibrate_bn_uses_exact_averages_of_the_batches() -> None:
    prefix = build_prefix(1)
    xs = [torch.randn(4, 3, 8, 8) + 2.0 for _ in range(3)]
    recalibrate_bn_(prefix, xs)
    stem_out = torch.cat([prefix.stem.conv(x) for x in xs])  # (12, 20, 8, 8)
    torch.testing.assert_close(prefix.stem.bn.running_mean, stem_out.mean(dim=(0, 2, 3)), atol=1e-5, rtol=1e-5)
    assert not prefix.training and prefix.stem.bn.momentum == 0.1
