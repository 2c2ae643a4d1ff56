"""Dataset objects shared by every registered dataset: items (x float (3, 32, 32), int label).

:class:`VisionData` separates the stored image (:meth:`VisionData.raw`, uint8 (3, 32, 32)) from its
transform, so that stream subsets can re-transform one copy of the data per experience (the noisy
stream uses one base dataset with four corruptions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import ConcatDataset, Dataset, Subset
from torchvision.transforms.v2 import functional as F

from phn.data.errors import CorruptDatasetError
from phn.data.transforms import IMAGE_SIZE, TensorTransform


class VisionData(Dataset):
    """One split of a registered dataset.

    Items are ``(transform(raw(i)), int label)``; :meth:`raw` gives the uint8 (3, 32, 32) image
    before any transform, which is what stream subsets re-transform per experience.

    Attributes:
        name: registry key of the dataset.
        train: True for the training split.
        root: folder the files were read from.
        targets: int64 tensor (N,) of labels, available without touching images.
        transform: maps uint8 (3, 32, 32) to the returned tensor.
        provenance: JSON-ready record of the files read (``phn.data.provenance.split_provenance``;
            set by ``load_dataset``), or None.
    """

    def __init__(self, name: str, train: bool, root: Path, targets: torch.Tensor,
                 transform: TensorTransform, provenance: dict[str, Any] | None = None) -> None:
        self.name, self.train, self.root = name, train, root
        self.targets = targets
        self.transform = transform
        self.provenance = provenance

    def raw(self, index: int) -> torch.Tensor:
        """uint8 image (3, 32, 32) of sample ``index``, untransformed."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.raw(index)), int(self.targets[index])

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        return f"{type(self).__name__}({self.name!r}, {split}, n={len(self)}, root={str(self.root)!r})"


class TensorImages(VisionData):
    """A split held in memory as uint8 (N, C, 32, 32), C = 1 (grey, repeated on access) or 3."""

    def __init__(self, images: torch.Tensor, **kwargs) -> None:
        super().__init__(**kwargs)
        self.images = images

    def raw(self, index: int) -> torch.Tensor:
        image = self.images[index]
        return image.repeat(3, 1, 1) if image.shape[0] == 1 else image.clone()


class FileImages(VisionData):
    """A split kept on disk; each access decodes one file and resizes it to 32 x 32."""

    def __init__(self, paths: tuple[str, ...], **kwargs) -> None:
        super().__init__(**kwargs)
        self.paths = paths

    def raw(self, index: int) -> torch.Tensor:
        path = self.paths[index]
        try:
            with Image.open(path) as image:
                image = F.resize(image.convert("RGB"), [IMAGE_SIZE, IMAGE_SIZE])
        except (OSError, UnidentifiedImageError) as error:
            raise CorruptDatasetError(f"{path}: cannot decode image ({error})") from error
        return F.pil_to_tensor(image)


def dataset_targets(dataset: Dataset) -> torch.Tensor:
    """All labels of ``dataset`` as an int64 tensor (N,), without loading any image.

    Works for :class:`VisionData`, stream subsets, ``torch.utils.data.Subset`` /
    ``ConcatDataset`` of those, and torchvision datasets exposing ``targets``, ``labels`` or
    ``_samples``. The labels are those the items return (local labels for stream subsets).
    """
    if isinstance(dataset, Subset):
        return dataset_targets(dataset.dataset)[torch.as_tensor(dataset.indices, dtype=torch.long)]
    if isinstance(dataset, ConcatDataset):
        return torch.cat([dataset_targets(d) for d in dataset.datasets])
    for attribute in ("targets", "labels"):
        values = getattr(dataset, attribute, None)
        if values is not None:
            return torch.as_tensor(np.asarray(values), dtype=torch.long).reshape(-1)
    if hasattr(dataset, "_samples"):
        return torch.tensor([label for _, label in dataset._samples], dtype=torch.long)
    raise TypeError(f"cannot read labels of {type(dataset).__name__} without loading its items")



__all__ = ["FileImages", "TensorImages", "VisionData", "dataset_targets"]
