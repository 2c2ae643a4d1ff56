"""A tiny, learnable, in-memory stream for fast strategy and runner tests (no files)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from phn.data import Experience


class ToyImages(Dataset):
    """Images whose class shows as a bright quadrant plus noise. Items: (x (3, S, S), local label)."""

    def __init__(self, classes: tuple[int, ...], per_class: int, size: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.targets = torch.arange(len(classes)).repeat_interleave(per_class)
        self.images = 0.3 * torch.randn(len(self.targets), 3, size, size, generator=g)
        half = size // 2
        for i, local in enumerate(self.targets.tolist()):
            c = classes[local] % 4
            r, s = divmod(c, 2)
            self.images[i, classes[local] % 3, r * half:(r + 1) * half, s * half:(s + 1) * half] += 1.5

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.targets[index])


def tiny_stream(num_experiences: int = 3, classes_per_experience: int = 2, per_class: int = 16,
                size: int = 16, seed: int = 0) -> list[Experience]:
    stream = []
    for t in range(num_experiences):
        classes = tuple(range(t * classes_per_experience, (t + 1) * classes_per_experience))
        stream.append(Experience(
            task_id=t, classes=classes,
            train=ToyImages(classes, per_class, size, seed=100 * seed + t),
            test=ToyImages(classes, per_class // 2, size, seed=100 * seed + t + 50),
            dataset="toy", name=f"toy[{t}]",
        ))
    return stream
