"""Readers for the on-disk formats of the registered datasets.

Each reader takes the directory where a dataset was found and returns either an
:class:`ArraySplit` (all images in memory, for small-image datasets) or a :class:`FileSplit`
(one image file per sample, decoded lazily, for GTSRB and TinyImageNet). Readers only read: they
never write next to the data, so read-only locations such as ``/usr/share/datasets`` work.

Every inconsistency becomes a :class:`~phn.data.errors.CorruptDatasetError` naming the file;
nothing is silently dropped or shortened.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision.datasets as tvd
from torchvision.datasets.folder import make_dataset
from torchvision.datasets.utils import check_integrity

from phn.data.errors import ChecksumError, CorruptDatasetError


@dataclass(frozen=True)
class ArraySplit:
    """One split held in memory.

    Attributes:
        images: uint8 tensor (N, C, H, W), C = 1 (grey) or 3 (RGB).
        targets: int64 tensor (N,).
    """

    images: torch.Tensor
    targets: torch.Tensor


@dataclass(frozen=True)
class FileSplit:
    """One split kept on disk, one image file per sample.

    Attributes:
        paths: image file of every sample, in index order.
        targets: int64 tensor (N,).
    """

    paths: tuple[str, ...]
    targets: torch.Tensor


def find_file(directory: Path, name: str) -> Path | None:
    """``directory/name`` if it exists, else ``directory/name.gz``, else None."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def check_md5(path: Path, md5: str, verify: bool) -> None:
    """Raise :class:`ChecksumError` if ``verify`` and ``path`` does not match ``md5``."""
    if verify and not check_integrity(str(path), md5):
        raise ChecksumError(
            f"{path}: md5 does not match the published sum {md5} (truncated or altered file?). "
            "Re-download it, or, if you trust the file, pass verify_checksums=False or set "
            "PHN_VERIFY_CHECKSUMS=0."
        )


# ----------------------------------------------------------------------------- MNIST family (idx)
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read an idx file (plain or gzipped, decompressed in memory) with strict size checks.

    Raises:
        CorruptDatasetError: bad magic number, truncated gzip stream, or fewer/more bytes than
            the header announces.
    """
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise CorruptDatasetError(f"{path}: cannot decompress ({error})") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise CorruptDatasetError(f"{path}: not an idx file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptDatasetError(f"{path}: truncated header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise CorruptDatasetError(
            f"{path}: header announces shape {shape} ({expected} bytes) but the file holds "
            f"{len(raw) - header} bytes (truncated or corrupt)"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def read_mnist_like(directory: Path, train: bool, verify: bool) -> ArraySplit:
    """MNIST / FashionMNIST idx files in ``directory`` (torchvision ``raw/`` or flat layout).

    ``verify`` is unused: the published md5 sums are of upstream gzip files, which distributions
    recompress (Debian's differ); the strict size checks of :func:`read_idx` catch truncation.
    """
    prefix = "train" if train else "t10k"
    image_path = find_file(directory, f"{prefix}-images-idx3-ubyte")
    label_path = find_file(directory, f"{prefix}-labels-idx1-ubyte")
    if image_path is None or label_path is None:
        raise CorruptDatasetError(f"{directory}: {prefix} idx files disappeared while loading")
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise CorruptDatasetError(f"{image_path}: expected (N, H, W) images and (N,) labels")
    if len(images) != len(labels):
        raise CorruptDatasetError(
            f"{image_path} holds {len(images)} images but {label_path} holds {len(labels)} labels"
        )
    return ArraySplit(
        images=torch.from_numpy(images.copy()).unsqueeze(1),
        targets=torch.from_numpy(labels.astype(np.int64)),
    )


# ----------------------------------------------------------------------------- CIFAR (pickles)
class _CheckedCIFAR10(tvd.CIFAR10):
    """torchvision CIFAR-10 whose md5 checks cover only the requested split and can be skipped."""

    def __init__(self, root: Path, train: bool, verify: bool) -> None:
        self._verify = verify
        super().__init__(str(root), train=train, download=False)

    def _check_integrity(self) -> bool:
        for filename, md5 in self.train_list if self.train else self.test_list:
            check_md5(Path(self.root, self.base_folder, filename), md5, self._verify)
        return True

    def _load_meta(self) -> None:
        path = Path(self.root, self.base_folder, self.meta["filename"])
        check_md5(path, self.meta["md5"], self._verify)
        with open(path, "rb") as file:
            self.classes = pickle.load(file, encoding="latin1")[self.meta["key"]]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


class _CheckedCIFAR100(_CheckedCIFAR10):
    base_folder = tvd.CIFAR100.base_folder
    train_list = tvd.CIFAR100.train_list
    test_list = tvd.CIFAR100.test_list
    meta = tvd.CIFAR100.meta


def _first_unreadable_pickle(paths: Sequence[Path]) -> Path | None:
    for path in paths:
        try:
            with open(path, "rb") as file:
                pickle.load(file, encoding="latin1")
        except Exception:  # noqa: BLE001 - any failure means this file is the culprit
            return path
    return None


def read_cifar(directory: Path, train: bool, verify: bool, hundred: bool) -> ArraySplit:
    """CIFAR-10 (``cifar-10-batches-py/``) or CIFAR-100 (``cifar-100-python/``, fine labels)."""
    cls = _CheckedCIFAR100 if hundred else _CheckedCIFAR10
    names = [n for n, _ in (cls.train_list if train else cls.test_list)] + [cls.meta["filename"]]
    try:
        dataset = cls(directory, train=train, verify=verify)
    except CorruptDatasetError:
        raise
    except Exception as error:  # noqa: BLE001 - unpickling can fail in many ways
        files = [directory / cls.base_folder / n for n in names]
        culprit = _first_unreadable_pickle(files)
        where = culprit if culprit is not None else directory / cls.base_folder
        raise CorruptDatasetError(f"{where}: cannot read CIFAR pickle ({error!r})") from error
    data, targets = np.asarray(dataset.data), np.asarray(dataset.targets, dtype=np.int64)
    if len(data) != len(targets) or len(data) == 0:
        raise CorruptDatasetError(
            f"{directory / cls.base_folder}: {len(data)} images but {len(targets)} labels"
        )
    images = torch.from_numpy(data).permute(0, 3, 1, 2).contiguous()  # HWC -> CHW
    return ArraySplit(images=images, targets=torch.from_numpy(targets))


# ----------------------------------------------------------------------------- SVHN (.mat)
class _CheckedSVHN(tvd.SVHN):
    """torchvision SVHN whose md5 check can be skipped."""

    def __init__(self, root: Path, split: str, verify: bool) -> None:
        self._verify = verify
        super().__init__(str(root), split=split, download=False)

    def _check_integrity(self) -> bool:
        check_md5(Path(self.root, self.filename), self.file_md5, self._verify)
        return True


def read_svhn(directory: Path, train: bool, verify: bool) -> ArraySplit:
    """SVHN cropped digits ``{train,test}_32x32.mat``; label 10 (digit 0) becomes 0."""
    split = "train" if train else "test"
    path = directory / tvd.SVHN.split_list[split][1]
    try:
        dataset = _CheckedSVHN(directory, split=split, verify=verify)
    except CorruptDatasetError:
        raise
    except Exception as error:  # noqa: BLE001 - scipy raises many types for bad .mat files
        raise CorruptDatasetError(f"{path}: cannot load .mat file ({error!r})") from error
    data, labels = np.asarray(dataset.data), np.asarray(dataset.labels, dtype=np.int64).reshape(-1)
    if data.ndim != 4 or data.shape[1] != 3 or len(data) != len(labels) or len(data) == 0:
        raise CorruptDatasetError(f"{path}: X has shape {data.shape} but y has {len(labels)} labels")
    return ArraySplit(images=torch.from_numpy(np.ascontiguousarray(data)), targets=torch.from_numpy(labels))


# ----------------------------------------------------------------------------- image folders
def _checked_files(samples: Sequence[tuple[str, int]], where: Path) -> FileSplit:
    if not samples:
        raise CorruptDatasetError(f"{where}: no images found")
    for path, _ in samples:
        if not os.path.isfile(path):
            raise CorruptDatasetError(f"{path}: listed in the annotations but missing")
    paths, labels = zip(*samples)
    return FileSplit(paths=tuple(paths), targets=torch.tensor(labels, dtype=torch.int64))


def read_gtsrb(directory: Path, train: bool, verify: bool) -> FileSplit:
    """GTSRB in torchvision's layout under ``directory/gtsrb`` (``.ppm`` images, test CSV)."""
    try:
        samples = tvd.GTSRB(str(directory), split="train" if train else "test")._samples
    except Exception as error:  # noqa: BLE001 - bad CSV rows, unreadable folders
        raise CorruptDatasetError(f"{directory / 'gtsrb'}: cannot index GTSRB ({error!r})") from error
    return _checked_files(samples, directory / "gtsrb")


def read_tinyimagenet(directory: Path, train: bool, verify: bool) -> FileSplit:
    """TinyImageNet-200 (``tiny-imagenet-200/``); class ids follow the order of ``wnids.txt``."""
    base = directory / "tiny-imagenet-200"
    wnids = [line.strip() for line in (base / "wnids.txt").read_text().splitlines() if line.strip()]
    if len(set(wnids)) != len(wnids) or not wnids:
        raise CorruptDatasetError(f"{base / 'wnids.txt'}: empty or duplicated class ids")
    class_to_idx = {wnid: i for i, wnid in enumerate(wnids)}
    if train:
        try:
            samples = make_dataset(str(base / "train"), class_to_idx, extensions=(".jpeg",))
        except FileNotFoundError as error:
            raise CorruptDatasetError(f"{base / 'train'}: incomplete ({error})") from error
        return _checked_files(samples, base / "train")
    annotations = base / "val" / "val_annotations.txt"
    samples = []
    for number, line in enumerate(annotations.read_text().splitlines(), start=1):
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in class_to_idx:
            raise CorruptDatasetError(f"{annotations}:{number}: bad line {line!r}")
        samples.append((str(base / "val" / "images" / fields[0]), class_to_idx[fields[1]]))
    return _checked_files(samples, annotations)


# ----------------------------------------------------------------------------- UCI digits (CSV)
DIGITS_FILE = "digits.csv.gz"
DIGITS_MD5 = "a0339c30a8a5312a1b6f9e5c719dcce5"  # of the DECOMPRESSED csv (scikit-learn's copy)
DIGITS_TEST_EVERY = 4


def digits_split(labels: np.ndarray, train: bool) -> np.ndarray:
    """Indices of the fixed split of the digits file: within each class, in file order, every
    fourth image (rank 3, 7, 11, ...) is a test image, the rest train (1,347 / 450 of 1,797)."""
    ranks = np.zeros(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        ranks[where] = np.arange(len(where))
    is_test = ranks % DIGITS_TEST_EVERY == DIGITS_TEST_EVERY - 1
    return np.flatnonzero(~is_test if train else is_test)


def read_digits(directory: Path, train: bool, verify: bool) -> ArraySplit:
    """The UCI handwritten digits as scikit-learn bundles them (``digits.csv.gz``: 1,797 rows of 64
    pixel values in 0..16 and the label, 8 x 8 images), split by :func:`digits_split`.

    Pixels are scaled to uint8 (v * 255 / 16); ``load_dataset`` resizes 8 -> 32. ``verify`` checks
    the md5 of the decompressed content (robust to recompression).
    """
    path = find_file(directory, DIGITS_FILE.removesuffix(".gz"))
    if path is None:
        raise CorruptDatasetError(f"{directory}: {DIGITS_FILE} disappeared while loading")
    try:
        raw = path.read_bytes()
        text = gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, zlib.error) as error:
        raise CorruptDatasetError(f"{path}: cannot decompress ({error})") from error
    if verify and hashlib.md5(text).hexdigest() != DIGITS_MD5:
        raise ChecksumError(
            f"{path}: md5 of the decompressed content does not match scikit-learn's digits ({DIGITS_MD5}). "
            "Reinstall scikit-learn, or, if you trust the file, pass verify_checksums=False or set "
            "PHN_VERIFY_CHECKSUMS=0."
        )
    try:
        table = np.loadtxt(io.StringIO(text.decode()), delimiter=",", ndmin=2)
    except (ValueError, UnicodeDecodeError) as error:
        raise CorruptDatasetError(f"{path}: not a digits CSV ({error})") from error
    if table.shape[1] != 65 or table[:, :64].min() < 0 or table[:, :64].max() > 16:
        raise CorruptDatasetError(f"{path}: expected rows of 64 pixel values in 0..16 and a label, "
                                  f"got shape {table.shape}")
    labels = table[:, 64].astype(np.int64)
    keep = digits_split(labels, train)
    pixels = np.rint(table[keep, :64] * 255 / 16).astype(np.uint8).reshape(-1, 1, 8, 8)
    return ArraySplit(images=torch.from_numpy(pixels), targets=torch.from_numpy(labels[keep]))


__all__ = [
    "DIGITS_FILE", "ArraySplit", "FileSplit", "check_md5", "digits_split", "find_file", "read_cifar", "read_digits",
    "read_gtsrb", "read_idx", "read_mnist_like", "read_svhn", "read_tinyimagenet",
]
