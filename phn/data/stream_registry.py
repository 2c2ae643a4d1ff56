"""One entry point for every stream: :func:`make_stream` by name, or a :class:`StreamConfig`.

Stream names:

* ``split-<dataset>``: class-incremental split of any registered dataset. Defaults
  (experiences x classes): fashionmnist, mnist, digits, cifar10, svhn 5 x 2; cifar100 20 x 5;
  tinyimagenet 20 x 10; gtsrb 8 x 5 (40 of its 43 classes).
* ``noisy-<dataset>``: the Section 4.2 stream on any dataset; 4 experiences of
  min(5, classes // 4) classes (cifar100: 4 x 5, fashionmnist: 4 x 2).
* ``cross:<first>-><second>``: two experiences from two datasets, 5 random classes each
  (``cross:<d>-><d>``: two disjoint blocks of classes of one dataset).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from numbers import Integral
from typing import Any, Literal

from phn.data.datasets import DATASETS, get_dataset_info
from phn.data.streams import Stream, cross_dataset_stream, noisy_stream, split_dataset

MAX_SEED = 2**63 - 1

SPLIT_DEFAULTS: dict[str, tuple[int, int]] = {
    "fashionmnist": (5, 2), "mnist": (5, 2), "digits": (5, 2), "cifar10": (5, 2), "svhn": (5, 2),
    "cifar100": (20, 5), "tinyimagenet": (20, 10), "gtsrb": (8, 5),
}


def stream_names() -> list[str]:
    """Every valid stream name (cross streams shown as the pattern and one example)."""
    names = [f"{kind}-{d}" for kind in ("split", "noisy") for d in DATASETS]
    return names + ["cross:<dataset>-><dataset> (e.g. cross:cifar10->mnist)"]


def parse_stream_name(name: str) -> tuple[str, tuple[str, ...]]:
    """``"split-cifar100"`` -> ``("split", ("cifar100",))``; ``"cross:a->b"`` -> ``("cross", ("a", "b"))``.

    Raises:
        ValueError: unknown kind or dataset; the message lists the valid names.
    """
    if name.startswith("cross:") and "->" in name:
        kind, datasets = "cross", tuple(name[len("cross:"):].split("->"))
    else:
        kind, _, dataset = name.partition("-")
        datasets = (dataset,)
    if kind not in ("split", "noisy", "cross") or len(datasets) != (2 if kind == "cross" else 1) \
            or any(d not in DATASETS for d in datasets):
        raise ValueError(f"unknown stream {name!r}; valid names: {', '.join(stream_names())}")
    return kind, datasets


def make_stream(name: str, **kwargs: Any) -> Stream:
    """Build the stream called ``name`` (see the module docstring).

    Args:
        name: stream name.
        **kwargs: options of the underlying builder (``split_dataset``, ``noisy_stream`` or
            ``cross_dataset_stream``): ``seed``, ``num_experiences``, ``classes_per_experience``,
            ``class_order``, ``max_per_class``, ``max_per_class_test``, ``augment``, ``root``,
            ``verify_checksums``, ``download``. Options left at None take the stream's default.

    Returns:
        A list of experiences.

    Raises:
        ValueError: e.g. ``classes_per_experience`` alone that does not divide the classes (pass
            ``num_experiences`` to use a subset of them).
    """
    kind, datasets = parse_stream_name(name)
    corrupt = kwargs.pop("corrupt", True)
    if not corrupt and kind != "noisy":
        raise ValueError(f"{name}: corrupt=False applies to noisy streams only")
    num_experiences = kwargs.pop("num_experiences", None)
    per_experience = kwargs.pop("classes_per_experience", None)
    if kwargs.get("class_order") is None:
        kwargs.pop("class_order", None)
    num_classes = get_dataset_info(datasets[0]).num_classes
    if kind == "split":
        if num_experiences is None and per_experience is None:
            num_experiences, per_experience = SPLIT_DEFAULTS.get(datasets[0], (5, num_classes // 5))
        elif num_experiences is None:
            available = num_classes if kwargs.get("class_order") is None else len(kwargs["class_order"])
            num_experiences = _experiences_of(per_experience, available)
        return split_dataset(datasets[0], num_experiences, per_experience, stream_name=name, **kwargs)
    if kind == "noisy":
        num_experiences = 4 if num_experiences is None else num_experiences
        if per_experience is None:
            per_experience = min(5, num_classes // num_experiences)
        return noisy_stream(datasets[0], num_experiences, per_experience, stream_name=name, corrupt=corrupt, **kwargs)
    if num_experiences not in (None, 2) or "class_order" in kwargs:
        raise ValueError(f"{name}: a cross-dataset stream has exactly 2 experiences and random classes")
    per_experience = 5 if per_experience is None else per_experience
    return cross_dataset_stream(*datasets, per_experience, stream_name=name, **kwargs)


def _experiences_of(per_experience: int, available: int) -> int:
    """How many experiences of ``per_experience`` classes use all ``available`` classes (else ValueError)."""
    if isinstance(per_experience, bool) or not isinstance(per_experience, Integral) or per_experience < 1:
        raise ValueError(f"classes_per_experience must be a positive integer, got {per_experience!r}")
    if per_experience > available:
        raise ValueError(f"classes_per_experience={per_experience} exceeds the {available} classes available")
    if available % per_experience:
        used = available - available % per_experience
        raise ValueError(f"{available} classes do not split into experiences of {per_experience}; "
                         f"pass num_experiences (--num-experiences) to use {used} of them")
    return available // per_experience


def _checked_seed(seed: object) -> int:
    """``seed`` as an int in 0..2**63-1 (numpy integers accepted), else ValueError naming the field."""
    if isinstance(seed, bool) or not isinstance(seed, Integral) or not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"StreamConfig.seed must be an integer in 0..2**63-1 (0..{MAX_SEED}), got {seed!r}")
    return int(seed)


def _checked_class_order(order: object) -> tuple[int, ...]:
    """``order`` as a tuple of plain ints (numpy integers converted), else ValueError naming the field."""
    try:
        values = tuple(order) if not isinstance(order, (str, bytes)) else None
    except TypeError:
        values = None
    if values is None:
        raise ValueError(f"StreamConfig.class_order must be a sequence of class ids, got {order!r}")
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, Integral)]
    if bad:
        raise ValueError(f"StreamConfig.class_order must hold integer class ids; not integers: {bad}")
    return tuple(int(v) for v in values)


@dataclass(frozen=True)
class StreamConfig:
    """Everything that defines a stream; ``build()`` makes it. JSON-ready via ``dataclasses.asdict``.

    Attributes:
        name: stream name (see :func:`stream_names`).
        seed: seed of the local RNG drawing the class order, an integer in 0..2**63-1.
        num_experiences: None = the stream's default.
        classes_per_experience: None = the stream's default.
        class_order: explicit original class ids (split and noisy streams); stored as a tuple of ints.
        max_per_class: first N images per class, train and test.
        max_per_class_test: test cap overriding ``max_per_class``; ``"all"`` = full test set.
        augment: random crop + flip on training items.
        root: first data root (then ``$PHN_DATA``, then ``<repo>/data``).
        verify_checksums: md5 checks; None reads ``$PHN_VERIFY_CHECKSUMS`` (default on).
        download: fetch missing files (needs internet).
        corrupt: noisy streams only: False switches the corruptions off (the paper's "normal"
            stream: same classes, same order).
    """

    name: str = "split-fashionmnist"
    seed: int = 0
    num_experiences: int | None = None
    classes_per_experience: int | None = None
    class_order: tuple[int, ...] | None = None
    max_per_class: int | None = None
    max_per_class_test: int | Literal["all"] | None = None
    augment: bool = True
    root: str | None = None
    verify_checksums: bool | None = None
    download: bool = False
    corrupt: bool = True

    def __post_init__(self) -> None:
        kind, _ = parse_stream_name(self.name)
        if not self.corrupt and kind != "noisy":
            raise ValueError(f"StreamConfig.corrupt=False applies to noisy streams only, not {self.name!r}")
        object.__setattr__(self, "seed", _checked_seed(self.seed))
        if self.class_order is not None:
            object.__setattr__(self, "class_order", _checked_class_order(self.class_order))
        for field in ("num_experiences", "classes_per_experience", "max_per_class"):
            value = getattr(self, field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"StreamConfig.{field} must be a positive integer or None, got {value!r}")
        cap = self.max_per_class_test
        if cap not in (None, "all") and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ValueError(f"StreamConfig.max_per_class_test must be a positive integer, 'all' or None, got {cap!r}")

    def build(self, root: str | os.PathLike | None = None) -> Stream:
        """Build the stream; ``root`` overrides ``self.root`` (machine-specific paths)."""
        options = dataclasses.asdict(self)
        name = options.pop("name")
        options["root"] = root if root is not None else options["root"]
        return make_stream(name, **options)


__all__ = ["MAX_SEED", "SPLIT_DEFAULTS", "StreamConfig", "make_stream", "parse_stream_name", "stream_names"]
