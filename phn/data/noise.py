"""Per-experience corruptions of the noisy stream (paper Section 4.2; authors' release).

Each corruption acts on a float image (3, H, W) in [0, 1], after ToTensor and before Normalize,
on train and test data alike:

=====  ==========================  ==================================================================
 exp    name                        transform
=====  ==========================  ==================================================================
 1      ``clean``                   none
 2      ``solarize``                RandomSolarize(threshold=0.5, p=1): pixels >= 0.5 become 1 - x
 3      ``blur``                    GaussianBlur(kernel_size=5, sigma=0.9)
 4      ``autocontrast-gray-blur``  RandomAutocontrast(p=1) -> Grayscale(3) -> GaussianBlur(5, (0.6, 0.7))
=====  ==========================  ==================================================================

GaussianBlur runs as :class:`SeparableGaussianBlur`, a subclass giving torchvision's result (to
~1e-7) without torch's thread pool, which made single-image blurs slow on a busy 2-core machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torchvision.transforms import v2

from phn.data.transforms import TensorTransform


class SeparableGaussianBlur(v2.GaussianBlur):
    """torchvision's ``GaussianBlur`` (same kernel, reflect padding, sigma sampling), computed for
    single float images (C, H, W) as two 1-D passes of element-wise ops.

    The stock path (reflect pad + depthwise conv2d) enters torch's intra-op thread pool even for a
    3 x 32 x 32 image; on a busy 2-core machine that cost 30-50 ms per image instead of ~0.1 ms
    and capped the noisy stream at ~400 img/s in the main process. Results match
    ``torchvision.transforms.v2.functional.gaussian_blur`` to ~1e-7 (tested). Other inputs
    (batches, uint8, PIL) go through torchvision unchanged.
    """

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not (type(inpt) is torch.Tensor and inpt.ndim == 3 and inpt.is_floating_point()):
            return super().transform(inpt, params)
        (kernel_w, kernel_h), (sigma_w, sigma_h) = self.kernel_size, params["sigma"]
        out = _blur_1d(inpt, _gaussian_kernel(kernel_w, sigma_w, inpt), dim=-1)
        return _blur_1d(out, _gaussian_kernel(kernel_h, sigma_h, inpt), dim=-2)


def _gaussian_kernel(size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    """Normalised 1-D Gaussian weights (size,), as torchvision builds them."""
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    weights = torch.exp(-0.5 * (x / sigma) ** 2)
    return weights / weights.sum()


def _blur_1d(image: torch.Tensor, kernel: torch.Tensor, dim: int) -> torch.Tensor:
    """Convolve ``image`` along ``dim`` with reflect padding (e.g. (3, 32, 32) -> (3, 32, 32))."""
    n, radius = image.shape[dim], len(kernel) // 2
    index = torch.arange(-radius, n + radius, device=image.device).abs()
    index = torch.where(index > n - 1, 2 * (n - 1) - index, index)  # reflect, edge not repeated
    padded = image.index_select(dim, index)
    out = padded.narrow(dim, 0, n) * kernel[0]
    for k in range(1, len(kernel)):
        out = out + padded.narrow(dim, k, n) * kernel[k]
    return out


@dataclass(frozen=True)
class NoiseTransform:
    """A named corruption.

    Attributes:
        name: short label for tables and plots.
        transform: tensor transform on float (3, H, W) in [0, 1]; None means no corruption.
    """

    name: str
    transform: TensorTransform | None

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """Apply the corruption (identity for ``clean``) to a float (3, H, W) image."""
        return image if self.transform is None else self.transform(image)


def noise_transforms() -> list[NoiseTransform]:
    """The four per-experience corruptions of the noisy stream, in experience order."""
    return [
        NoiseTransform("clean", None),
        NoiseTransform("solarize", v2.RandomSolarize(threshold=0.5, p=1.0)),
        NoiseTransform("blur", SeparableGaussianBlur(kernel_size=5, sigma=0.9)),
        NoiseTransform(
            "autocontrast-gray-blur",
            v2.Compose([
                v2.RandomAutocontrast(p=1.0),
                v2.Grayscale(num_output_channels=3),
                SeparableGaussianBlur(kernel_size=5, sigma=(0.6, 0.7)),
            ]),
        ),
    ]


NOISE_NAMES: tuple[str, ...] = ("clean", "solarize", "blur", "autocontrast-gray-blur")

__all__ = ["NOISE_NAMES", "NoiseTransform", "SeparableGaussianBlur", "noise_transforms"]
