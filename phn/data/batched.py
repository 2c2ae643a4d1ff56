"""A device-resident, batched training data path (the runner's default where it applies).

The per-item pipeline (:mod:`phn.data.transforms`) crops, flips, corrupts and normalises one image at
a time in Python: 12-15k images per second on one CPU core, which a GPU training HN-4 would outpace
many times over. :class:`DeviceBatches` keeps an experience's training images as ONE uint8 tensor on
the training device and applies the same steps to whole batches there, as fast CIFAR trainers such
as airbench do::

    uint8 (B, C, 32, 32) -> RandomCrop(32, padding=4) -> RandomHorizontalFlip
        -> ToDtype(float, scale) -> [the noisy stream's corruption] -> Normalize

Equivalence with the per-item pipeline (tested in ``tests/data/test_batched.py``):

* the same images (the stream's class selection and per-class caps; ``ClassSubset.indices``) and
  labels, each exactly once per epoch, in a seeded random order;
* crop offsets uniform in 0..8 on each axis of the zero-padded 40 x 40 image and flips with
  probability 1/2, as ``v2.RandomCrop(32, padding=4)`` and ``v2.RandomHorizontalFlip()`` draw them;
  every output image is one of those 162 crops/flips of its source image, bit for bit;
* the deterministic steps use torchvision's own functionals on the batch (``to_dtype``,
  ``normalize``, ``solarize``, ``gaussian_blur``, ``autocontrast``, ``rgb_to_grayscale``), so without
  augmentation a batch equals the stacked per-item outputs (exactly, or to float rounding for blurs);
* the noisy stream's corruptions run after crop and flip, in the per-item order (blur and
  autocontrast do not commute with a zero-padded crop); experience 4's blur draws its sigma from
  U(0.6, 0.7) for every image, as ``v2.GaussianBlur(5, (0.6, 0.7))`` does per item.

The random draws differ from the per-item path's (one seeded ``torch.Generator`` per experience
instead of the global RNG per item), so runs of the two paths are different samples of the same
training distribution, not the same numbers. The generator is the runner's per-experience
generator, whose state its checkpoints save: a resumed run stays bit-identical on CPU.

Applies to streams of in-memory datasets (:class:`phn.data.vision.TensorImages`: MNIST,
FashionMNIST, digits, CIFAR, SVHN); folder datasets (GTSRB, TinyImageNet) and datasets too large for
device memory keep the DataLoader (``TrainConfig.data_path = "loader"``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch.nn import functional as nnf
from torchvision.transforms.v2 import functional as F

from phn.data.transforms import IMAGE_SIZE

PADDING = 4


@dataclass(frozen=True)
class ImageSpec:
    """What a stream subset's per-item transform does, as data (so it can run on batches).

    Attributes:
        mean, std: per-channel normalisation (3 values each).
        augment: random crop (padding 4) and horizontal flip.
        noise: name of the noisy stream's corruption (:data:`phn.data.noise.NOISE_NAMES`), or None.
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    augment: bool
    noise: str | None = None


BatchCorruption = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _blur(x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """Gaussian blur (kernel 5, reflect padding) of float images x (B, C, H, W); ``sigma`` one value
    or one per image (B,)."""
    if not torch.is_tensor(sigma):
        return F.gaussian_blur(x, [5, 5], [float(sigma), float(sigma)])
    b, c, h, w = x.shape
    offsets = torch.arange(5, dtype=x.dtype, device=x.device) - 2
    kernel = torch.exp(-0.5 * (offsets / sigma.to(x)[:, None]) ** 2)  # (B, 5), as torchvision builds it
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (B*C, 5)
    flat = nnf.pad(x.reshape(1, b * c, h, w), [2, 2, 2, 2], mode="reflect")
    flat = nnf.conv2d(flat, kernel[:, None, None, :], groups=b * c)  # along the width
    flat = nnf.conv2d(flat, kernel[:, None, :, None], groups=b * c)  # along the height
    return flat.reshape(b, c, h, w)


def _sigmas(x: torch.Tensor, generator: torch.Generator, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(x.shape[0], generator=generator)


BATCH_CORRUPTIONS: dict[str, BatchCorruption] = {
    "clean": lambda x, g: x,
    "solarize": lambda x, g: F.solarize(x, threshold=0.5),
    "blur": lambda x, g: _blur(x, 0.9),
    "autocontrast-gray-blur": lambda x, g: _blur(
        F.rgb_to_grayscale(F.autocontrast(x), num_output_channels=3), _sigmas(x, g, 0.6, 0.7)),
}
"""The noisy stream's corruptions (:func:`phn.data.noise.noise_transforms`) on float batches."""


def crop_and_flip(images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Random-crop (after zero padding by 4) and horizontally flip a batch.

    Args:
        images: (B, C, 32, 32), any dtype, on any device.
        offsets: (B, 2) int64 top/left corners in 0..8 of the crop in the padded 40 x 40 image.
        flips: (B,) bool, True where the crop is mirrored.

    Returns:
        (B, C, 32, 32), same dtype and device.
    """
    b, c = images.shape[:2]
    padded = nnf.pad(images, [PADDING] * 4)  # zeros, as v2.RandomCrop(padding=4, fill=0)
    span = torch.arange(IMAGE_SIZE, device=images.device)
    offsets = offsets.to(images.device)
    rows = (offsets[:, 0, None] + span)[:, None, :, None]  # (B, 1, 32, 1)
    cols = offsets[:, 1, None] + span  # (B, 32)
    cols = torch.where(flips.to(images.device)[:, None], cols.flip(1), cols)[:, None, None, :]
    batch = torch.arange(b, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


class DeviceBatches:
    """An experience's training set on ``device`` as uint8, iterated in transformed batches.

    Args:
        dataset: a :class:`phn.data.streams.ClassSubset` of in-memory images with an ``spec``
            (see :meth:`supports`).
        batch_size: images per batch; the last batch of an epoch may be smaller (as the DataLoader's
            ``drop_last=False``).
        device: where images are stored and transformed.
        generator: CPU generator for the order, crops, flips and random corruption parameters.
        shuffle: a new random order every epoch (else index order).

    Iterating yields ``(x, y)``: x float32 (B, 3, 32, 32) normalised, y int64 (B,) local labels,
    both on ``device``.
    """

    def __init__(self, dataset, batch_size: int, device: torch.device, generator: torch.Generator,
                 shuffle: bool = True) -> None:
        if not self.supports(dataset):
            raise TypeError(f"DeviceBatches needs a stream subset of in-memory images, got {type(dataset).__name__}")
        self.spec: ImageSpec = dataset.spec
        self.batch_size, self.device, self.generator, self.shuffle = batch_size, torch.device(device), generator, shuffle
        self.images = dataset.base.images[dataset.indices].to(self.device)  # uint8 (N, 1 or 3, 32, 32)
        self.targets = dataset.targets.to(self.device)
        self.mean, self.std = list(self.spec.mean), list(self.spec.std)
        self.corrupt = BATCH_CORRUPTIONS[self.spec.noise or "clean"]

    @staticmethod
    def supports(dataset) -> bool:
        """True for stream subsets whose base holds its images in memory and whose transform is
        described by an :class:`ImageSpec`."""
        from phn.data.vision import TensorImages

        spec = getattr(dataset, "spec", None)
        return (spec is not None and (spec.noise or "clean") in BATCH_CORRUPTIONS
                and isinstance(getattr(dataset, "base", None), TensorImages))

    def __len__(self) -> int:
        return math.ceil(len(self.targets) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.targets)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            index = order[start:start + self.batch_size].to(self.device)
            yield self.transform(self.images[index]), self.targets[index]

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 1 or 3, 32, 32) on the device -> normalised float32 (B, 3, 32, 32)."""
        images = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
        if self.spec.augment:
            offsets = torch.randint(0, 2 * PADDING + 1, (images.shape[0], 2), generator=self.generator)
            flips = torch.rand(images.shape[0], generator=self.generator) < 0.5
            images = crop_and_flip(images, offsets, flips)
        x = F.to_dtype(images.contiguous(), torch.float32, scale=True)
        x = self.corrupt(x, self.generator)
        return F.normalize(x, self.mean, self.std)


__all__ = ["BATCH_CORRUPTIONS", "DeviceBatches", "ImageSpec", "crop_and_flip"]
