"""Dataset registry: where each dataset lives on disk, how it is read and normalised.

Every registered dataset loads as a :class:`VisionData` whose items are
``(x: float32 (3, 32, 32), label: int)``: grey-scale images are resized 28 -> 32 and repeated to
three channels, GTSRB (various sizes) and TinyImageNet (64 x 64) are resized to 32 x 32, so one
model serves every stream. Nothing is downloaded unless ``download=True`` is passed.

Data roots, searched in order (first hit wins; the error lists them all):

1. the ``root=`` argument (CLI ``--data-root``; it may also hold the files directly, e.g. a flat
   MNIST folder),
2. the environment variable ``PHN_DATA``,
3. ``<repo>/data`` (the parent of the ``phn`` package directory),
4. dataset-specific system folders: FashionMNIST also looks in ``/usr/share/datasets/fashion-mnist``
   (Debian package ``dataset-fashion-mnist``), digits in scikit-learn's bundled data folder (both
   read in place, never written to).

Offline datasets: FashionMNIST (Debian package) and ``digits``, the UCI handwritten digits that
scikit-learn ships inside its wheel (1,797 real 8 x 8 scans of 10 digits; the only real image
dataset a PyPI package bundles without a download at run time). Digits are resized 8 -> 32 and
split deterministically, 1,352 train / 445 test (:func:`phn.data.readers.digits_split`).

An explicit ``root=`` or a ``$PHN_DATA`` that is not an existing folder is an error (never a silent
fall-back to the next root); with ``download=True`` the first root is created. The train and test
split of one dataset must come from one folder (:func:`load_splits`).

Checksums: CIFAR-10/100, SVHN and MNIST (``.gz``) files are checked against torchvision's md5 sums,
FashionMNIST and digits against the md5 of their decompressed content (robust to recompression),
unless ``verify_checksums=False`` (CLI ``--no-verify-checksums``) or ``PHN_VERIFY_CHECKSUMS=0``
(``verify_checksums=None`` reads the variable). GTSRB and TinyImageNet have no published sums.

Provenance: every loaded split records the files it read (path, size, sha256) and what was
verified as ``VisionData.provenance`` (:mod:`phn.data.provenance`).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torchvision.datasets as tvd
from torchvision.datasets.utils import download_and_extract_archive
from torchvision.transforms.v2 import functional as F

from phn.data import readers
from phn.data.errors import CorruptDatasetError, DatasetNotFoundError
from phn.data.provenance import split_provenance
from phn.data.transforms import IMAGE_SIZE, TensorTransform, build_transform
from phn.data.vision import FileImages, TensorImages, VisionData, dataset_targets

REPO_DATA_DIR = Path(__file__).resolve().parents[2] / "data"
DATA_ENV = "PHN_DATA"
CHECKSUM_ENV = "PHN_VERIFY_CHECKSUMS"

Reader = Callable[[Path, bool, bool], readers.ArraySplit | readers.FileSplit]


@dataclass(frozen=True)
class DatasetInfo:
    """What the library knows about one dataset.

    Attributes:
        name: registry key.
        title: human-readable name.
        num_classes: number of classes; labels are 0..num_classes-1.
        mean: per-channel normalisation mean (3 values; grey-scale stats repeated).
        std: per-channel normalisation standard deviation (3 values).
        grayscale: stored with one channel (repeated to three when loaded).
        native_size: (H, W) on disk, or None when it varies (GTSRB).
        subdirs: folders under a data root that may hold the files ("" = the root itself).
        train_files: files (or folders, ending in "/") the train split needs, relative to the
            folder found.
        test_files: same for the test split.
        how_to_obtain: instructions; ``{root}`` is replaced by the first data root.
        reader: ``reader(folder, train, verify_checksums)`` -> ArraySplit or FileSplit.
        gz_ok: a file ``x`` may also be present as ``x.gz`` (idx files).
        system_dirs: extra absolute folders searched after the data roots.
        checksum: what ``verify_checksums`` checks (recorded in the provenance), None if nothing.
    """

    name: str
    title: str
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    grayscale: bool
    native_size: tuple[int, int] | None
    subdirs: tuple[str, ...]
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    how_to_obtain: str
    reader: Reader
    gz_ok: bool = False
    system_dirs: tuple[str, ...] = ()
    checksum: str | None = None

    def files(self, train: bool) -> tuple[str, ...]:
        """The files the train (or test) split needs."""
        return self.train_files if train else self.test_files


def _idx_files(prefix: str) -> tuple[str, ...]:
    return (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")


def _grey(value: float) -> tuple[float, float, float]:
    return (value, value, value)


def _sklearn_data_dirs() -> tuple[str, ...]:
    """scikit-learn's bundled data folder, located without importing scikit-learn (() if absent)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return ()
    return (str(Path(spec.origin).parent / "datasets" / "data"),)


_CIFAR10_DIR, _CIFAR100_DIR = "cifar-10-batches-py/", "cifar-100-python/"
_TINY = "tiny-imagenet-200/"
_DOWNLOAD_HINT = "or, on a machine with internet access, pass --download (CLI) or download=True (Python)."
_MD5, _CONTENT_MD5 = "md5", "md5 of decompressed content"

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "fashionmnist", "Fashion-MNIST", 10, _grey(0.2860), _grey(0.3530), True, (28, 28),
            ("FashionMNIST/raw", "FashionMNIST", "fashion-mnist", "fashionmnist"),
            _idx_files("train"), _idx_files("t10k"),
            "`apt-get install dataset-fashion-mnist` (files land in /usr/share/datasets/fashion-mnist), "
            "or copy the four *-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist "
            f"into {{root}}/FashionMNIST/raw/, {_DOWNLOAD_HINT}",
            readers.read_fashionmnist, gz_ok=True, system_dirs=("/usr/share/datasets/fashion-mnist",),
            checksum=_CONTENT_MD5,
        ),
        DatasetInfo(
            "mnist", "MNIST", 10, _grey(0.1307), _grey(0.3081), True, (28, 28),
            ("MNIST/raw", "MNIST", "mnist"), _idx_files("train"), _idx_files("t10k"),
            "copy the four *-ubyte.gz files from https://ossci-datasets.s3.amazonaws.com/mnist/ "
            f"into {{root}}/MNIST/raw/, {_DOWNLOAD_HINT}",
            readers.read_mnist, gz_ok=True, checksum=_MD5,
        ),
        DatasetInfo(
            "digits", "UCI handwritten digits (scikit-learn's copy)", 10, _grey(0.3052), _grey(0.3232), True,
            (8, 8), ("digits", ""), (readers.DIGITS_FILE.removesuffix(".gz"),),
            (readers.DIGITS_FILE.removesuffix(".gz"),),
            "`pip install scikit-learn` (it bundles sklearn/datasets/data/digits.csv.gz, found there "
            f"automatically), or copy that file into {{root}}/digits/",
            readers.read_digits, gz_ok=True, system_dirs=_sklearn_data_dirs(), checksum=_CONTENT_MD5,
        ),
        DatasetInfo(
            "cifar10", "CIFAR-10", 10, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), False,
            (32, 32), ("",),
            tuple(f"{_CIFAR10_DIR}data_batch_{i}" for i in range(1, 6)) + (f"{_CIFAR10_DIR}batches.meta",),
            (f"{_CIFAR10_DIR}test_batch", f"{_CIFAR10_DIR}batches.meta"),
            "download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/ and extract it "
            f"into {{root}}/ (giving {{root}}/cifar-10-batches-py/), {_DOWNLOAD_HINT}",
            partial(readers.read_cifar, hundred=False), checksum=_MD5,
        ),
        DatasetInfo(
            "cifar100", "CIFAR-100", 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), False,
            (32, 32), ("",), (f"{_CIFAR100_DIR}train", f"{_CIFAR100_DIR}meta"),
            (f"{_CIFAR100_DIR}test", f"{_CIFAR100_DIR}meta"),
            "download cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/ and extract it "
            f"into {{root}}/ (giving {{root}}/cifar-100-python/), {_DOWNLOAD_HINT}",
            partial(readers.read_cifar, hundred=True), checksum=_MD5,
        ),
        DatasetInfo(
            "svhn", "SVHN (cropped digits)", 10, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970),
            False, (32, 32), ("svhn", "SVHN", ""), ("train_32x32.mat",), ("test_32x32.mat",),
            "download train_32x32.mat and test_32x32.mat from http://ufldl.stanford.edu/housenumbers/ "
            f"into {{root}}/svhn/, {_DOWNLOAD_HINT}",
            readers.read_svhn, checksum=_MD5,
        ),
        DatasetInfo(
            "gtsrb", "GTSRB", 43, (0.3337, 0.3064, 0.3171), (0.2672, 0.2564, 0.2629), False, None,
            ("",), ("gtsrb/GTSRB/Training/",), ("gtsrb/GTSRB/Final_Test/Images/", "gtsrb/GT-final_test.csv"),
            "download GTSRB-Training_fixed.zip, GTSRB_Final_Test_Images.zip and GTSRB_Final_Test_GT.zip "
            "from https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/ and extract "
            f"them into {{root}}/gtsrb/, {_DOWNLOAD_HINT}",
            readers.read_gtsrb,
        ),
        DatasetInfo(
            "tinyimagenet", "TinyImageNet-200", 200, (0.4802, 0.4481, 0.3975), (0.2302, 0.2265, 0.2262),
            False, (64, 64), ("",), (f"{_TINY}wnids.txt", f"{_TINY}train/"),
            (f"{_TINY}wnids.txt", f"{_TINY}val/val_annotations.txt", f"{_TINY}val/images/"),
            "download http://cs231n.stanford.edu/tiny-imagenet-200.zip and extract it into {root}/ "
            f"(giving {{root}}/tiny-imagenet-200/), {_DOWNLOAD_HINT}",
            readers.read_tinyimagenet,
        ),
    )
}


def get_dataset_info(name: str) -> DatasetInfo:
    """The registry entry of ``name``; unknown names raise ValueError listing the valid ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; registered: {sorted(DATASETS)}") from None


# ----------------------------------------------------------------------------- roots and files
def data_roots(root: str | os.PathLike | None = None) -> list[Path]:
    """Data roots in search order: ``root``, ``$PHN_DATA``, ``<repo>/data`` (duplicates dropped)."""
    candidates = [root, os.environ.get(DATA_ENV) or None, REPO_DATA_DIR]
    return _unique(Path(c).expanduser() for c in candidates if c is not None)


def search_dirs(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """Every folder searched for dataset ``name``, in order."""
    info = get_dataset_info(name)
    dirs: list[Path] = []
    for i, data_root in enumerate(data_roots(root)):
        dirs += [data_root / sub if sub else data_root for sub in info.subdirs]
        if i == 0 and root is not None:
            dirs.append(data_root)  # an explicit root may itself hold the files (flat layout)
    return _unique(dirs + [Path(d) for d in info.system_dirs])


def check_data_roots(root: str | os.PathLike | None = None, create: bool = False) -> None:
    """Fail unless the explicit ``root`` and ``$PHN_DATA`` (when given) are existing folders.

    Args:
        root: the ``root=`` argument (CLI ``--data-root``).
        create: create the first data root if missing (``download=True`` writes there).

    Raises:
        DatasetNotFoundError: naming the root that does not exist (and the variable that names it).
    """
    env = os.environ.get(DATA_ENV) or None
    if create and not data_roots(root)[0].exists():
        data_roots(root)[0].mkdir(parents=True)
    if root is not None and (problem := _folder_problem(Path(root).expanduser())):
        raise DatasetNotFoundError(
            f"data root {Path(root).expanduser()} (root= / --data-root) {problem}; "
            "fix the path, create the folder, or leave it out to search the default roots"
        )
    if env is not None and (problem := _folder_problem(Path(env).expanduser())):
        raise DatasetNotFoundError(
            f"data root {Path(env).expanduser()} (from ${DATA_ENV}) {problem}; "
            f"fix or unset ${DATA_ENV}, or create the folder"
        )


def _folder_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a data root ("does not exist", "is not a folder"), or None."""
    if not path.exists():
        return "does not exist"
    return None if path.is_dir() else "is not a folder"


def resolve_verify_checksums(verify_checksums: bool | None = None) -> bool:
    """``verify_checksums`` if given, else ``$PHN_VERIFY_CHECKSUMS`` ("0"/"false"/"no"/"off" = skip)."""
    if verify_checksums is not None:
        return bool(verify_checksums)
    value = os.environ.get(CHECKSUM_ENV, "1").strip().lower()
    return value not in {"0", "false", "no", "off"}


def _unique(paths) -> list[Path]:
    seen: dict[Path, None] = {}
    for path in paths:
        seen.setdefault(path, None)
    return list(seen)


def _has(folder: Path, relative: str, gz_ok: bool) -> bool:
    if relative.endswith("/"):
        return (folder / relative).is_dir()
    path = folder / relative
    return path.is_file() or (gz_ok and path.with_name(path.name + ".gz").is_file())


def find_dataset_dir(name: str, train: bool, root: str | os.PathLike | None = None) -> Path | None:
    """The first searched folder holding every file of the split, or None."""
    info = get_dataset_info(name)
    for folder in search_dirs(name, root):
        if all(_has(folder, f, info.gz_ok) for f in info.files(train)):
            return folder
    return None


def require_dataset(name: str, root: str | os.PathLike | None = None) -> None:
    """Fail early unless both splits of ``name`` are on this machine (nothing is read).

    Raises:
        DatasetNotFoundError: the message :func:`load_dataset` gives: the folders searched, the files
            expected and how to obtain them.
    """
    info = get_dataset_info(name)
    for train in (True, False):
        if find_dataset_dir(name, train, root) is None:
            raise DatasetNotFoundError(_not_found_message(info, train, root))


def _not_found_message(info: DatasetInfo, train: bool, root: str | os.PathLike | None) -> str:
    dirs = search_dirs(info.name, root)
    lines = [f"Dataset {info.name!r} ({info.title}), {'train' if train else 'test'} split, not found.",
             "Searched (in order):"]
    for folder in dirs:
        present = [f for f in info.files(train) if _has(folder, f, info.gz_ok)]
        missing = [f for f in info.files(train) if f not in present]
        note = f"  (partial: missing {', '.join(missing)})" if present else ""
        lines.append(f"  {folder}{note}")
    suffix = " (each may also be gzipped, *.gz)" if info.gz_ok else ""
    lines.append(f"Expected in one of them: {', '.join(info.files(train))}{suffix}.")
    lines.append("How to obtain: " + info.how_to_obtain.format(root=data_roots(root)[0]))
    lines.append(f"Data roots are: the root= argument (--data-root), then ${DATA_ENV}, then {REPO_DATA_DIR}.")
    return "\n".join(lines)


def _download(info: DatasetInfo, train: bool, root: Path, verify: bool) -> None:
    """Fetch the split into ``root`` with torchvision's downloaders (needs internet)."""
    root.mkdir(parents=True, exist_ok=True)
    split = "train" if train else "test"
    if info.name == "tinyimagenet":
        download_and_extract_archive(
            "http://cs231n.stanford.edu/tiny-imagenet-200.zip", str(root),
            md5="90528d7ca1a48142e341f4ef8d21d0de" if verify else None,
        )
    elif info.name in ("svhn", "gtsrb"):
        cls = tvd.SVHN if info.name == "svhn" else tvd.GTSRB
        cls(str(root / "svhn") if info.name == "svhn" else str(root), split=split, download=True)
    else:
        cls = {"mnist": tvd.MNIST, "fashionmnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10,
               "cifar100": tvd.CIFAR100}[info.name]
        cls(str(root), train=train, download=True)


def dataset_transform(name: str, augment: bool, extra: TensorTransform | None = None,
                      normalize: bool = True) -> Callable[[torch.Tensor], torch.Tensor]:
    """The per-item pipeline of dataset ``name`` (its own statistics); see ``phn.data.transforms``."""
    info = get_dataset_info(name)
    return build_transform(info.mean, info.std, augment=augment, extra=extra, normalize=normalize)


def _resolve_transform(name: str, train: bool, transform: str | Callable, extra: TensorTransform | None):
    if callable(transform):
        if extra is not None:
            raise ValueError("extra_transform cannot be combined with a callable transform")
        return transform
    options = {"auto": (train, True), "train": (True, True), "test": (False, True),
               "unnormalized": (False, False)}
    if transform not in options:
        raise ValueError(f"transform must be a callable or one of {list(options)}, got {transform!r}")
    augment, normalize = options[transform]
    return dataset_transform(name, augment, extra, normalize)


def load_dataset(
    name: str,
    train: bool = True,
    root: str | os.PathLike | None = None,
    *,
    transform: str | Callable[[torch.Tensor], torch.Tensor] = "auto",
    extra_transform: TensorTransform | None = None,
    verify_checksums: bool | None = None,
    download: bool = False,
) -> VisionData:
    """Load one split of a registered dataset.

    Args:
        name: registry key (see ``DATASETS``).
        train: training split if True, else test split.
        root: first data root to search (see the module docstring for the full order).
        transform: ``"auto"`` (train pipeline with augmentation for ``train=True``, test pipeline
            otherwise), ``"train"``, ``"test"``, ``"unnormalized"`` (float in [0, 1], no
            augmentation), or a callable applied to the uint8 (3, 32, 32) image.
        extra_transform: tensor transform inserted after ToTensor and before Normalize.
        verify_checksums: check md5 sums (all but GTSRB and TinyImageNet); None reads
            ``$PHN_VERIFY_CHECKSUMS``.
        download: fetch missing files into the first data root (created if needed; needs internet).

    Returns:
        A :class:`VisionData` whose items are (x: float32 (3, 32, 32), label: int), with the
        ``provenance`` of the files read (:func:`phn.data.provenance.split_provenance`).

    Raises:
        DatasetNotFoundError: ``root`` or ``$PHN_DATA`` is not an existing folder, or the files are in
            none of the searched folders.
        CorruptDatasetError: a file is truncated, unreadable, inconsistent or fails its md5 sum.
    """
    info = get_dataset_info(name)
    verify = resolve_verify_checksums(verify_checksums)
    check_data_roots(root, create=download)
    folder = find_dataset_dir(name, train, root)
    if folder is None and download:
        _download(info, train, data_roots(root)[0], verify)
        folder = find_dataset_dir(name, train, root)
    if folder is None:
        raise DatasetNotFoundError(_not_found_message(info, train, root))
    split = _read_split(info, folder, train, verify, _fingerprint(folder, info.files(train), info.gz_ok))
    sources = split.sources or _registry_sources(info, folder, train)
    common = dict(name=name, train=train, root=folder, targets=split.targets,
                  transform=_resolve_transform(name, train, transform, extra_transform),
                  provenance=split_provenance(name, train, folder, sources, info.checksum if verify else None))
    if isinstance(split, readers.FileSplit):
        return FileImages(paths=split.paths, **common)
    return TensorImages(images=split.images, **common)


def load_splits(name: str, root: str | os.PathLike | None = None, **options) -> tuple[VisionData, VisionData]:
    """The train and test split of ``name``, both from one folder.

    Args:
        name, root: as in :func:`load_dataset`.
        **options: keyword options of :func:`load_dataset`, applied to both splits.

    Returns:
        ``(train, test)``.

    Raises:
        DatasetNotFoundError: the splits were found in two folders (e.g. ``$PHN_DATA`` holds only the
            training files and the test files come from another root); the message names both.
    """
    train = load_dataset(name, True, root, **options)
    test = load_dataset(name, False, root, **options)
    if Path(train.root).resolve() != Path(test.root).resolve():
        raise DatasetNotFoundError(
            f"Dataset {name!r}: the train split was found in {train.root} but the test split in {test.root}; "
            "put both splits in one folder"
        )
    return train, test


def _registry_sources(info: DatasetInfo, folder: Path, train: bool) -> tuple[Path, ...]:
    """The registry's files of the split in ``folder`` (the plain file, else its ``.gz``), for readers
    that do not report what they read."""
    paths = []
    for relative in info.files(train):
        path = folder / relative
        paths.append(path if relative.endswith("/") or path.is_file() or not info.gz_ok else Path(f"{path}.gz"))
    return tuple(paths)


def _fingerprint(folder: Path, files: tuple[str, ...], gz_ok: bool) -> tuple:
    """(path, size, mtime) of the split's files: a cached read is reused only while they are unchanged."""
    stats = []
    for relative in files:
        for path in (folder / relative, folder / f"{relative}.gz") if gz_ok else (folder / relative,):
            if path.exists():
                stat = path.stat()
                stats.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(stats)


@functools.lru_cache(maxsize=8)
def _read_split(info: DatasetInfo, folder: Path, train: bool, verify: bool, fingerprint: tuple) -> readers.ArraySplit | readers.FileSplit:
    """Read (and, for in-memory splits, resize to 32 x 32) one split. Cached per process on the files'
    fingerprint: notebooks build many streams of one dataset, and reading + resizing FashionMNIST
    takes about a second each time. The cached tensors are never modified (datasets only index them)."""
    split = info.reader(folder, train, verify)
    labels = split.targets
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= info.num_classes):
        raise CorruptDatasetError(f"{folder}: labels outside 0..{info.num_classes - 1}")
    if isinstance(split, readers.FileSplit):
        return split
    images = split.images
    if tuple(images.shape[-2:]) != (IMAGE_SIZE, IMAGE_SIZE):  # e.g. 28 x 28 grey: resize once, here
        images = F.resize(images, [IMAGE_SIZE, IMAGE_SIZE], antialias=True)
    return readers.ArraySplit(images=images.contiguous(), targets=split.targets, sources=split.sources)


__all__ = [
    "CHECKSUM_ENV", "DATASETS", "DATA_ENV", "REPO_DATA_DIR", "DatasetInfo", "FileImages",
    "TensorImages", "VisionData", "check_data_roots", "data_roots", "dataset_targets", "dataset_transform",
    "find_dataset_dir", "get_dataset_info", "load_dataset", "load_splits", "resolve_verify_checksums",
    "search_dirs",
]
