"""Per-item transforms, as in the authors' release, on uint8 (3, 32, 32) tensors.

Every dataset first becomes uint8 images of shape (3, 32, 32) (grey-scale resized 28 -> 32 and
repeated to three channels; GTSRB and TinyImageNet resized to 32 x 32), so one model serves every
stream. The pipelines then are (torchvision.transforms.v2 throughout)::

    train: RandomCrop(32, padding=4) -> RandomHorizontalFlip -> ToDtype(float, scale) -> [extra] -> Normalize
    test:                                                       ToDtype(float, scale) -> [extra] -> Normalize

``ToDtype(float32, scale=True)`` plays the role of ``ToTensor``: crop and flip act on the uint8 image
first, exactly as the authors' PIL crop/flip ran before ``ToTensor``; the optional ``extra`` tensor
transform (the noisy stream's corruption) sees float images in [0, 1] before normalisation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision.transforms import v2

TensorTransform = Callable[[torch.Tensor], torch.Tensor]

IMAGE_SIZE = 32


def build_transform(
    mean: Sequence[float],
    std: Sequence[float],
    *,
    augment: bool,
    extra: TensorTransform | None = None,
    normalize: bool = True,
) -> v2.Compose:
    """The per-item pipeline from a uint8 (3, 32, 32) image to a float (3, 32, 32) tensor.

    Args:
        mean: per-channel mean used by ``Normalize`` (3 values).
        std: per-channel standard deviation used by ``Normalize`` (3 values).
        augment: add ``RandomCrop(32, padding=4)`` and ``RandomHorizontalFlip`` (training).
        extra: tensor transform applied to the float image in [0, 1] before normalisation.
        normalize: end with ``Normalize(mean, std)``; False leaves values in [0, 1].

    Returns:
        A callable mapping uint8 (3, 32, 32) to float32 (3, 32, 32).
    """
    steps: list[Callable] = []
    if augment:
        steps += [v2.RandomCrop(IMAGE_SIZE, padding=4), v2.RandomHorizontalFlip()]
    steps.append(v2.ToDtype(torch.float32, scale=True))
    if extra is not None:
        steps.append(extra)
    if normalize:
        steps.append(v2.Normalize(list(mean), list(std)))
    return v2.Compose(steps)


__all__ = ["IMAGE_SIZE", "TensorTransform", "build_transform"]
