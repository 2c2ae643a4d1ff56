"""Noisy stream (Section 4.2): each corruption does what it says, on train and test, before Normalize."""

from __future__ import annotations

import pytest
import torch

from phn.data import NOISE_NAMES, get_dataset_info, load_dataset, noise_transforms, noisy_stream

NO_MD5 = {"verify_checksums": False}


def _unnormalise(x: torch.Tensor, name: str) -> torch.Tensor:
    info = get_dataset_info(name)
    return x * torch.tensor(info.std)[:, None, None] + torch.tensor(info.mean)[:, None, None]


def _clean_and_noisy(split, count: int = 6):
    """Pairs (clean image in [0, 1], corrupted image in [0, 1]) of the first items of ``split``."""
    for i in range(count):
        clean = split.base.raw(int(split.indices[i])).float() / 255
        yield clean, _unnormalise(split[i][0], split.base.name)


def _high_frequency_energy(image: torch.Tensor) -> float:
    return float((image[..., 1:, :] - image[..., :-1, :]).pow(2).sum() + (image[..., 1:] - image[..., :-1]).pow(2).sum())


@pytest.fixture(scope="module")
def stream(data_root):
    return noisy_stream("cifar100", 4, 5, seed=0, augment=False, root=data_root, **NO_MD5)


def test_noise_transforms_are_named_in_experience_order():
    assert NOISE_NAMES == ("clean", "solarize", "blur", "autocontrast-gray-blur")
    assert [n.name for n in noise_transforms()] == list(NOISE_NAMES)
    x = torch.rand(3, 8, 8)
    assert torch.equal(noise_transforms()[0](x), x)


def test_stream_layout_and_authors_class_order(stream):
    import random

    order = list(range(100))
    random.Random(0).shuffle(order)
    assert [e.classes for e in stream] == [tuple(order[i:i + 5]) for i in range(0, 20, 5)]
    assert [e.noise for e in stream] == list(NOISE_NAMES) and [e.task_id for e in stream] == [0, 1, 2, 3]


def test_first_experience_is_identical_to_the_clean_dataset(stream, data_root):
    clean = load_dataset("cifar100", False, data_root, transform="test", **NO_MD5)
    e = stream[0]
    for i in range(len(e.test)):
        assert torch.equal(e.test[i][0], clean[int(e.test.indices[i])][0])


@pytest.mark.parametrize("split", ["train", "test"])
def test_solarize_inverts_pixels_at_or_above_half(stream, split):
    for clean, noisy in _clean_and_noisy(getattr(stream[1], split)):
        expected = torch.where(clean >= 0.5, 1 - clean, clean)
        assert torch.allclose(noisy, expected, atol=1e-5)
        assert noisy.max() <= 0.5 + 1e-5


@pytest.mark.parametrize("split", ["train", "test"])
def test_blur_reduces_high_frequency_energy(stream, split):
    for clean, noisy in _clean_and_noisy(getattr(stream[2], split)):
        assert _high_frequency_energy(noisy) < 0.5 * _high_frequency_energy(clean)
        assert torch.allclose(noisy.mean(), clean.mean(), atol=0.05)


@pytest.mark.parametrize("split", ["train", "test"])
def test_fourth_experience_is_grey_and_blurred(stream, split):
    for clean, noisy in _clean_and_noisy(getattr(stream[3], split)):
        assert torch.allclose(noisy[0], noisy[1], atol=1e-5) and torch.allclose(noisy[1], noisy[2], atol=1e-5)
        grey = 0.2989 * clean[0] + 0.587 * clean[1] + 0.114 * clean[2]
        assert _high_frequency_energy(noisy[0]) < _high_frequency_energy(grey)


def test_noise_also_applies_with_augmentation(data_root):
    e = noisy_stream("cifar100", 2, 5, root=data_root, **NO_MD5)[1]
    torch.manual_seed(0)
    x = _unnormalise(e.train[0][0], "cifar100")
    assert x.max() <= 0.5 + 1e-5  # solarised (zero padding stays 0 < 0.5)


def test_noisy_stream_on_fashionmnist_and_validation(data_root):
    stream = noisy_stream("fashionmnist", 4, 2, root=data_root, **NO_MD5)
    assert [len(e.classes) for e in stream] == [2] * 4
    assert len({c for e in stream for c in e.classes}) == 8
    with pytest.raises(ValueError, match="only 10 available"):
        noisy_stream("fashionmnist", 4, 5, root=data_root, **NO_MD5)
    with pytest.raises(ValueError, match="4 corruptions"):
        noisy_stream("cifar100", 5, 5, root=data_root, **NO_MD5)
    custom = noisy_stream("fashionmnist", 2, 2, class_order=[3, 1, 4, 0], root=data_root, **NO_MD5)
    assert [e.classes for e in custom] == [(3, 1), (4, 0)]


@pytest.mark.parametrize("sigma", [0.9, (0.6, 0.7)])
def test_separable_blur_matches_torchvision(sigma):
    from torchvision.transforms import v2

    from phn.data.noise import SeparableGaussianBlur

    x = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        torch.manual_seed(1)
        ours = SeparableGaussianBlur(5, sigma)(x)
        torch.manual_seed(1)
        assert torch.allclose(ours, v2.GaussianBlur(5, sigma)(x), atol=1e-6)
    batch = torch.rand(2, 3, 8, 8)
    assert torch.allclose(SeparableGaussianBlur(3, 1.0)(batch), v2.functional.gaussian_blur(batch, [3, 3], [1.0, 1.0]))
