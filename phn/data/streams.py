"""Class-incremental streams: a stream is a ``list[Experience]``, task ids 0, 1, ... in order.

Every experience holds a train and a test dataset whose items are
``(x: float32 (3, 32, 32), local_label: int)``; local labels run 0..C-1 and
``experience.classes[local_label]`` is the original class id.

Class orders come from a local RNG, never global state (or from an explicit ``class_order``):

* split and cross-dataset streams: ``torch.randperm(n, generator=torch.Generator().manual_seed(seed))``,
  the order Avalanche's ``nc_benchmark(seed=seed)`` produces (the authors' Split-CIFAR100 and
  Split-TinyImageNet come from Avalanche);
* noisy stream: ``random.Random(seed).shuffle(range(n))``, as in the authors' noisy-CIFAR code.

``max_per_class`` keeps the first N images of each class in the dataset's index order (no
randomness). It caps the train AND test sets; ``max_per_class_test`` overrides the test cap
(an int, or ``"all"`` for the full test set).

Both splits of a dataset come from one folder (:func:`phn.data.datasets.load_splits`), and
:func:`stream_provenance` lists the files a stream was read from (for results-cache keys).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any, Literal

import torch
from torch.utils.data import ConcatDataset, Dataset, Subset

from phn.data.batched import ImageSpec
from phn.data.datasets import VisionData, dataset_transform, get_dataset_info, load_splits
from phn.data.errors import CorruptDatasetError
from phn.data.noise import NoiseTransform, noise_transforms

TestCap = int | Literal["all"] | None


@dataclass(frozen=True)
class Experience:
    """One step of a class-incremental stream.

    Attributes:
        task_id: 0-based position in the stream.
        classes: original class ids; position = local label.
        train: items (x (3, 32, 32) float, local label int).
        test: same for evaluation (never augmented).
        dataset: registry name of the source dataset.
        name: human-readable description, e.g. ``"noisy-cifar100[1] cifar100 classes=(...) noise=solarize"``.
        noise: name of the corruption applied (noisy streams), else None.
    """

    task_id: int
    classes: tuple[int, ...]
    train: Dataset
    test: Dataset
    dataset: str
    name: str
    noise: str | None = None

    @property
    def num_classes(self) -> int:
        """Number of classes C (local labels are 0..C-1)."""
        return len(self.classes)


Stream = list[Experience]


def class_indices(targets: torch.Tensor, classes: Sequence[int], max_per_class: int | None = None) -> torch.Tensor:
    """Indices (ascending) of the samples of ``classes``, the first ``max_per_class`` of each."""
    picked = [torch.nonzero(targets == c).flatten()[:max_per_class] for c in classes]
    return torch.sort(torch.cat(picked)).values if picked else torch.empty(0, dtype=torch.long)


class ClassSubset(Dataset):
    """The samples of some classes of a :class:`VisionData`, relabelled to 0..C-1.

    Args:
        base: the full split; its images are read with ``base.raw`` and transformed here, so
            several subsets (e.g. the noisy stream's) share one copy of the data.
        classes: original class ids; position = local label.
        transform: maps uint8 (3, 32, 32) to the returned float tensor.
        max_per_class: keep the first N samples of each class (index order); None keeps all.
        spec: what ``transform`` does, as data (:class:`phn.data.batched.ImageSpec`), so the
            runner can apply it to whole batches on the device (:class:`phn.data.batched.DeviceBatches`);
            None when unknown.

    Attributes:
        indices: int64 (N,) positions in ``base``.
        targets: int64 (N,) local labels. ``original_targets``: the base's labels.
    """

    def __init__(self, base: VisionData, classes: Sequence[int], transform,
                 max_per_class: int | None = None, spec: ImageSpec | None = None) -> None:
        self.base, self.classes, self.transform, self.spec = base, tuple(classes), transform, spec
        self.indices = class_indices(base.targets, self.classes, max_per_class)
        self.original_targets = base.targets[self.indices]
        counts = torch.bincount(self.original_targets, minlength=int(base.targets.max()) + 1)
        empty = [c for c in self.classes if c >= len(counts) or counts[c] == 0]
        if empty:
            split = "train" if base.train else "test"
            raise CorruptDatasetError(f"{base.root}: {base.name} {split} split has no images of classes {empty}")
        lookup = torch.full((len(counts),), -1, dtype=torch.long)
        lookup[torch.tensor(self.classes)] = torch.arange(len(self.classes))
        self.targets = lookup[self.original_targets]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.base.raw(int(self.indices[index]))), int(self.targets[index])

    def __repr__(self) -> str:
        return f"ClassSubset({self.base.name!r}, classes={list(self.classes)}, n={len(self)})"


def resolve_class_order(num_classes: int, seed: int = 0, class_order: Sequence[int] | None = None) -> list[int]:
    """An explicit, validated ``class_order``, or the seeded permutation of 0..num_classes-1.

    Raises:
        ValueError: ``class_order`` is empty, has duplicates, non-integers or ids out of range.
    """
    if class_order is None:
        generator = torch.Generator().manual_seed(seed)
        return torch.randperm(num_classes, generator=generator).tolist()
    order = list(class_order)
    bad = [c for c in order if isinstance(c, bool) or not isinstance(c, Integral) or not 0 <= c < num_classes]
    if not order or bad:
        raise ValueError(f"class_order must list class ids in 0..{num_classes - 1}; invalid: {bad or 'empty'}")
    duplicates = sorted({c for c in order if order.count(c) > 1})
    if duplicates:
        raise ValueError(f"class_order repeats class ids {duplicates}")
    return [int(c) for c in order]


def _per_experience(order: list[int], num_experiences: int, classes_per_experience: int | None) -> list[tuple[int, ...]]:
    if num_experiences < 1:
        raise ValueError(f"num_experiences must be >= 1, got {num_experiences}")
    if classes_per_experience is None:
        if len(order) % num_experiences:
            raise ValueError(f"{len(order)} classes cannot be split evenly into {num_experiences} experiences; "
                             "pass classes_per_experience")
        classes_per_experience = len(order) // num_experiences
    needed = num_experiences * classes_per_experience
    if classes_per_experience < 1 or needed > len(order):
        raise ValueError(f"{num_experiences} x {classes_per_experience} classes requested but only "
                         f"{len(order)} available")
    return [tuple(order[i:i + classes_per_experience]) for i in range(0, needed, classes_per_experience)]


def _test_cap(max_per_class: int | None, max_per_class_test: TestCap) -> int | None:
    if max_per_class_test == "all":
        return None
    return max_per_class if max_per_class_test is None else max_per_class_test


def _build(stream_name: str, parts: list[tuple[str, tuple[int, ...], NoiseTransform | None]], *,
           max_per_class: int | None, max_per_class_test: TestCap, augment: bool,
           root: str | os.PathLike | None, verify_checksums: bool | None, download: bool) -> Stream:
    """Experiences from (dataset, classes, corruption) triples; each dataset is loaded once."""
    for cap in (max_per_class, _test_cap(max_per_class, max_per_class_test)):
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ValueError(f"per-class caps must be positive integers, None or 'all'; got {cap!r}")
    loaded: dict[str, tuple[VisionData, VisionData]] = {}
    stream: Stream = []
    for task_id, (name, classes, noise) in enumerate(parts):
        if name not in loaded:
            loaded[name] = load_splits(name, root, transform="test", verify_checksums=verify_checksums,
                                       download=download)
        train, test = loaded[name]
        extra = noise.transform if noise is not None else None
        info = get_dataset_info(name)
        spec = ImageSpec(info.mean, info.std, augment, noise.name if noise is not None else None)
        label = f"{stream_name}[{task_id}] {name} classes={classes}" + (f" noise={noise.name}" if noise else "")
        stream.append(Experience(
            task_id=task_id, classes=classes,
            train=ClassSubset(train, classes, dataset_transform(name, augment, extra), max_per_class, spec),
            test=ClassSubset(test, classes, dataset_transform(name, False, extra),
                             _test_cap(max_per_class, max_per_class_test), dataclasses.replace(spec, augment=False)),
            dataset=name, name=label, noise=noise.name if noise else None,
        ))
    return stream


def _vision_bases(dataset: Dataset) -> Iterator[VisionData]:
    """The :class:`VisionData` a dataset reads from, through stream subsets, ``Subset`` and
    ``ConcatDataset`` (nothing for other datasets)."""
    if isinstance(dataset, VisionData):
        yield dataset
    elif isinstance(dataset, ClassSubset):
        yield from _vision_bases(dataset.base)
    elif isinstance(dataset, Subset):
        yield from _vision_bases(dataset.dataset)
    elif isinstance(dataset, ConcatDataset):
        for part in dataset.datasets:
            yield from _vision_bases(part)


def stream_provenance(stream: Sequence[Experience]) -> list[dict[str, Any]]:
    """The dataset splits a stream was read from: one record per distinct (dataset, split).

    Walks every experience's ``train`` and ``test`` down to its :class:`VisionData` bases and
    collects their ``provenance`` (see :mod:`phn.data.provenance`); datasets without such a base
    (e.g. in-memory toy streams) contribute nothing. JSON-ready copies, sorted by dataset, then
    train before test (then folder, should two copies of one split ever be mixed in one stream).

    Returns:
        ``[{"dataset", "split", "folder", "files": [{"path", "bytes", "sha256"} | {"path", "count",
        "bytes", "sha256"}], "checksum": str | None}, ...]``.
    """
    records: dict[str, dict[str, Any]] = {}
    for experience in stream:
        for dataset in (experience.train, experience.test):
            for base in _vision_bases(dataset):
                record = getattr(base, "provenance", None)
                if record is not None:
                    records.setdefault(json.dumps(record, sort_keys=True), record)
    ordered = sorted(records.items(), key=lambda kv: (kv[1]["dataset"], kv[1]["split"] != "train",
                                                      kv[1]["folder"], kv[0]))
    return [copy.deepcopy(record) for _, record in ordered]


def sample_images(experience: Experience, n: int = 8, train: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` images of an experience as a viewer sees them: float (n, 3, 32, 32) in [0, 1],
    with the experience's corruption applied (noisy streams), without augmentation or normalisation.

    Returns:
        ``(images, local_labels)``.
    """
    subset = experience.train if train else experience.test
    if not isinstance(subset, ClassSubset):
        raise TypeError(f"sample_images needs a stream built by phn.data, got {type(subset).__name__}")
    noise = {t.name: t for t in noise_transforms()}.get(experience.noise or "clean")
    images = []
    for index in range(min(n, len(subset))):
        image = subset.base.raw(int(subset.indices[index])).float() / 255  # (3, 32, 32) in [0, 1]
        images.append(noise(image).clamp(0, 1) if noise is not None else image)
    return torch.stack(images), subset.targets[: len(images)].clone()


def split_dataset(
    name: str,
    num_experiences: int,
    classes_per_experience: int | None = None,
    seed: int = 0,
    class_order: Sequence[int] | None = None,
    max_per_class: int | None = None,
    root: str | os.PathLike | None = None,
    verify_checksums: bool | None = None,
    *,
    max_per_class_test: TestCap = None,
    augment: bool = True,
    download: bool = False,
    stream_name: str | None = None,
) -> Stream:
    """Split any registered dataset into class-disjoint experiences.

    Args:
        name: registry key of the dataset.
        num_experiences: number of experiences.
        classes_per_experience: classes per experience; None splits all classes (of
            ``class_order`` if given) evenly. Only the first ``num_experiences *
            classes_per_experience`` classes of the order are used.
        seed: seed of the local RNG that draws the class order (ignored with ``class_order``).
        class_order: explicit order of original class ids (a permutation or subset).
        max_per_class: first N images of each class, train and test (see module docstring).
        root: first data root to search.
        verify_checksums: md5 checks; None reads ``$PHN_VERIFY_CHECKSUMS``.
        max_per_class_test: test cap overriding ``max_per_class``; ``"all"`` = no cap.
        augment: random crop + flip on train items.
        download: fetch missing files (needs internet).
        stream_name: label used in experience names (default ``"split-<name>"``).

    Returns:
        The stream, ``stream[t].task_id == t``.
    """
    order = resolve_class_order(get_dataset_info(name).num_classes, seed, class_order)
    groups = _per_experience(order, num_experiences, classes_per_experience)
    return _build(stream_name or f"split-{name}", [(name, g, None) for g in groups],
                  max_per_class=max_per_class, max_per_class_test=max_per_class_test, augment=augment,
                  root=root, verify_checksums=verify_checksums, download=download)


def split_cifar100(num_experiences: int = 20, classes_per_experience: int = 5, **kwargs: Any) -> Stream:
    """Split-CIFAR100: 20 experiences x 5 classes (paper Section 4.3); ``kwargs`` as in :func:`split_dataset`."""
    return split_dataset("cifar100", num_experiences, classes_per_experience, **kwargs)


def split_tinyimagenet(num_experiences: int = 20, classes_per_experience: int = 10, **kwargs: Any) -> Stream:
    """Split-TinyImageNet: 20 experiences x 10 classes, images 64 -> 32 (paper Section 4.3)."""
    return split_dataset("tinyimagenet", num_experiences, classes_per_experience, **kwargs)


def split_fashionmnist(num_experiences: int = 5, classes_per_experience: int = 2, **kwargs: Any) -> Stream:
    """Split-FashionMNIST: 5 experiences x 2 classes (the offline default)."""
    return split_dataset("fashionmnist", num_experiences, classes_per_experience, **kwargs)


def cross_dataset_stream(
    first: str,
    second: str,
    classes_per_experience: int = 5,
    seed: int = 0,
    *,
    max_per_class: int | None = None,
    max_per_class_test: TestCap = None,
    augment: bool = True,
    root: str | os.PathLike | None = None,
    verify_checksums: bool | None = None,
    download: bool = False,
    stream_name: str | None = None,
) -> Stream:
    """Two experiences: random classes of ``first``, then random classes of ``second``.

    Each experience is normalised with its own dataset's statistics. One local generator seeded
    with ``seed`` draws the permutation of ``first``'s classes, then that of ``second``'s. When
    ``second`` is ``first`` (the paper's "similar distribution" case), one permutation is drawn and
    the two experiences take consecutive, disjoint blocks of it.

    Args:
        first: dataset of experience 0.
        second: dataset of experience 1 (may equal ``first``: disjoint classes of one dataset).
        classes_per_experience: random classes taken from each dataset.
        seed: seed of the local generator.
        **others: as in :func:`split_dataset`.

    Returns:
        ``[experience from first, experience from second]``.
    """
    generator = torch.Generator().manual_seed(seed)
    c = classes_per_experience
    if first == second:
        num_classes = get_dataset_info(first).num_classes
        if not 1 <= 2 * c <= num_classes:
            raise ValueError(f"cannot take 2 x {c} disjoint classes: {first} has {num_classes}")
        order = torch.randperm(num_classes, generator=generator).tolist()
        parts = [(first, tuple(order[:c]), None), (first, tuple(order[c:2 * c]), None)]
    else:
        parts = []
        for name in (first, second):
            num_classes = get_dataset_info(name).num_classes
            if not 1 <= c <= num_classes:
                raise ValueError(f"cannot take {c} classes: {name} has {num_classes}")
            order = torch.randperm(num_classes, generator=generator).tolist()
            parts.append((name, tuple(order[:c]), None))
    return _build(stream_name or f"cross:{first}->{second}", parts, max_per_class=max_per_class,
                  max_per_class_test=max_per_class_test, augment=augment, root=root,
                  verify_checksums=verify_checksums, download=download)


def noisy_stream(
    base: str = "cifar100",
    num_experiences: int = 4,
    classes_per_experience: int = 5,
    seed: int = 0,
    *,
    class_order: Sequence[int] | None = None,
    max_per_class: int | None = None,
    max_per_class_test: TestCap = None,
    augment: bool = True,
    root: str | os.PathLike | None = None,
    verify_checksums: bool | None = None,
    download: bool = False,
    stream_name: str | None = None,
    corrupt: bool = True,
) -> Stream:
    """Noisy stream (Section 4.2): experience t of ``base`` corrupted by ``noise_transforms()[t]``.

    Classes: ``random.Random(seed).shuffle`` of all class ids (the authors' code), or
    ``class_order``; experience t takes the t-th block of ``classes_per_experience``. The
    corruption applies to train and test items after ToTensor, before Normalize.

    Args:
        base: registered dataset (FashionMNIST has 10 classes: use e.g. 4 x 2).
        num_experiences: 1..4; experience t gets corruption t (0 = clean).
        classes_per_experience: classes per experience.
        seed: seed of the local ``random.Random`` shuffling the classes.
        class_order: explicit class order instead of the seeded shuffle.
        corrupt: False switches every corruption off: the paper's "normal" stream, with the same
            classes in the same order (experience 1, always clean, is then identical in both).
        **others: as in :func:`split_dataset`.

    Returns:
        The stream; ``stream[t].noise`` names its corruption (None when ``corrupt`` is False).
    """
    noises = noise_transforms()
    if not 1 <= num_experiences <= len(noises):
        raise ValueError(f"noisy_stream defines {len(noises)} corruptions; num_experiences={num_experiences}")
    num_classes = get_dataset_info(base).num_classes
    if class_order is None:
        order = list(range(num_classes))
        random.Random(seed).shuffle(order)
    else:
        order = resolve_class_order(num_classes, seed, class_order)
    groups = _per_experience(order, num_experiences, classes_per_experience)
    return _build(stream_name or f"noisy-{base}", [(base, g, n if corrupt else None) for g, n in zip(groups, noises)],
                  max_per_class=max_per_class, max_per_class_test=max_per_class_test, augment=augment,
                  root=root, verify_checksums=verify_checksums, download=download)


__all__ = [
    "ClassSubset", "Experience", "Stream", "class_indices", "cross_dataset_stream", "noisy_stream", "sample_images",
    "resolve_class_order", "split_cifar100", "split_dataset", "split_fashionmnist", "split_tinyimagenet",
    "stream_provenance",
]
