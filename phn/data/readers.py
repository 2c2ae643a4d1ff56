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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
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
        sources: the files read (the ``.gz`` or plain file actually opened), for the provenance.
    """

    images: torch.Tensor
    targets: torch.Tensor
    sources: tuple[Path, ...] = ()


@dataclass(frozen=True)
class FileSplit:
    """One split kept on disk, one image file per sample.

    Attributes:
        paths: image file of every sample, in index order.
        targets: int64 tensor (N,).
        sources: the folders and annotation files read, for the provenance.
    """

    paths: tuple[str, ...]
    targets: torch.Tensor
    sources: tuple[Path, ...] = ()


def find_file(directory: Path, name: str) -> Path | None:
    """``directory/name`` if it exists, else ``directory/name.gz``, else None."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


SKIP_CHECKSUMS = "--no-verify-checksums (CLI), verify_checksums=False (Python) or PHN_VERIFY_CHECKSUMS=0"


def check_md5(path: Path, md5: str, verify: bool) -> None:
    """Raise :class:`ChecksumError` if ``verify`` and ``path`` does not match ``md5``."""
    if verify and not check_integrity(str(path), md5):
        raise ChecksumError(
            f"{path}: md5 does not match the published sum {md5} (truncated or altered file?). "
            f"Re-download it, or, if you trust the file, skip the check with {SKIP_CHECKSUMS}."
        )


def check_content_md5(path: Path, content: bytes, md5: str, source: str, remedy: str) -> None:
    """Raise :class:`ChecksumError` if the (decompressed) ``content`` of ``path`` does not match ``md5``.

    Args:
        source: whose content it should be, e.g. "Fashion-MNIST".
        remedy: how to get a good copy, e.g. "Re-download it".
    """
    if hashlib.md5(content).hexdigest() != md5:
        raise ChecksumError(
            f"{path}: md5 of the decompressed content does not match {source}'s ({md5}). "
            f"{remedy}, or, if you trust the file, skip the check with {SKIP_CHECKSUMS}."
        )


# ----------------------------------------------------------------------------- MNIST family (idx)
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_content(path: Path) -> bytes:
    """The bytes of ``path``, decompressed in memory when it ends in ``.gz``.

    Raises:
        CorruptDatasetError: unreadable file or truncated gzip stream.
    """
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, zlib.error) as error:
        raise CorruptDatasetError(f"{path}: cannot decompress ({error})") from error


def read_idx(path: Path) -> np.ndarray:
    """Read an idx file (plain or gzipped, decompressed in memory) with strict size checks.

    Raises:
        CorruptDatasetError: bad magic number, truncated gzip stream, or fewer/more bytes than
            the header announces.
    """
    return parse_idx(read_content(path), path)


def parse_idx(raw: bytes, path: Path) -> np.ndarray:
    """The array held by the (decompressed) idx bytes ``raw`` of ``path`` (named in errors)."""
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


# md5 of the DECOMPRESSED idx files, computed from the Debian package dataset-fashion-mnist
# (0.0~git20200523.55506a9-1, /usr/share/datasets/fashion-mnist/*.gz): Debian recompresses the
# gzip files, so their own md5 differs from upstream's (torchvision.datasets.FashionMNIST.resources),
# but the content is upstream's; checking the content accepts both copies, plain or gzipped.
FASHIONMNIST_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
# torchvision's published md5 sums of the MNIST .gz files, keyed by file name.
MNIST_GZ_MD5 = {filename: md5 for filename, md5 in tvd.MNIST.resources}


def _idx_path(directory: Path, name: str, prefer_gz: bool) -> Path:
    """The file of idx ``name`` to read: plain first, or the ``.gz`` first when ``prefer_gz``."""
    gz = directory / f"{name}.gz"
    path = gz if prefer_gz and gz.is_file() else find_file(directory, name)
    if path is None:
        raise CorruptDatasetError(f"{directory}: {name} disappeared while loading")
    return path


def _read_checked_idx(directory: Path, name: str, verify: bool, content_md5: Mapping[str, str] | None,
                      gz_md5: Mapping[str, str] | None) -> tuple[np.ndarray, Path]:
    """Read idx ``name`` from ``directory``, checking its md5 when ``verify`` and a sum is known."""
    path = _idx_path(directory, name, prefer_gz=verify and gz_md5 is not None)
    if verify and gz_md5 is not None:
        if path.suffix != ".gz":
            raise ChecksumError(
                f"{path}: cannot verify a decompressed file (the published md5 sums are of the .gz files); "
                f"put {name}.gz beside it, or skip the check with {SKIP_CHECKSUMS}."
            )
        check_md5(path, gz_md5[path.name], verify)
    raw = read_content(path)
    if verify and content_md5 is not None:
        check_content_md5(path, raw, content_md5[name], "Fashion-MNIST", "Re-download it")
    return parse_idx(raw, path), path


def read_mnist_like(directory: Path, train: bool, verify: bool, *, content_md5: Mapping[str, str] | None = None,
                    gz_md5: Mapping[str, str] | None = None) -> ArraySplit:
    """MNIST / FashionMNIST idx files in ``directory`` (torchvision ``raw/`` or flat layout).

    Args:
        verify: check the md5 sums given (nothing is checked when neither is given).
        content_md5: md5 of the decompressed content of each idx file (robust to recompression).
        gz_md5: md5 of each ``.gz`` file; with ``verify`` the ``.gz`` is read even when a plain copy
            lies beside it (so the file read is the file checked), and a plain file alone is a
            :class:`ChecksumError`.
    """
    prefix = "train" if train else "t10k"
    images, image_path = _read_checked_idx(directory, f"{prefix}-images-idx3-ubyte", verify, content_md5, gz_md5)
    labels, label_path = _read_checked_idx(directory, f"{prefix}-labels-idx1-ubyte", verify, content_md5, gz_md5)
    if images.ndim != 3 or labels.ndim != 1:
        raise CorruptDatasetError(f"{image_path}: expected (N, H, W) images and (N,) labels")
    if len(images) != len(labels):
        raise CorruptDatasetError(
            f"{image_path} holds {len(images)} images but {label_path} holds {len(labels)} labels"
        )
    return ArraySplit(
        images=torch.from_numpy(images.copy()).unsqueeze(1),
        targets=torch.from_numpy(labels.astype(np.int64)),
        sources=(image_path, label_path),
    )


read_fashionmnist = partial(read_mnist_like, content_md5=FASHIONMNIST_MD5)
read_mnist = partial(read_mnist_like, gz_md5=MNIST_GZ_MD5)


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
    sources = tuple(directory / cls.base_folder / n for n in names)
    return ArraySplit(images=images, targets=torch.from_numpy(targets), sources=sources)


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
    return ArraySplit(images=torch.from_numpy(np.ascontiguousarray(data)), targets=torch.from_numpy(labels),
                      sources=(path,))


# ----------------------------------------------------------------------------- image folders
def _checked_files(samples: Sequence[tuple[str, int]], where: Path, sources: tuple[Path, ...]) -> FileSplit:
    if not samples:
        raise CorruptDatasetError(f"{where}: no images found")
    for path, _ in samples:
        if not os.path.isfile(path):
            raise CorruptDatasetError(f"{path}: listed in the annotations but missing")
    paths, labels = zip(*samples)
    return FileSplit(paths=tuple(paths), targets=torch.tensor(labels, dtype=torch.int64), sources=sources)


def read_gtsrb(directory: Path, train: bool, verify: bool) -> FileSplit:
    """GTSRB in torchvision's layout under ``directory/gtsrb`` (``.ppm`` images, test CSV)."""
    try:
        samples = tvd.GTSRB(str(directory), split="train" if train else "test")._samples
    except Exception as error:  # noqa: BLE001 - bad CSV rows, unreadable folders
        raise CorruptDatasetError(f"{directory / 'gtsrb'}: cannot index GTSRB ({error!r})") from error
    base = directory / "gtsrb"
    sources = (base / "GTSRB" / "Training",) if train else (base / "GTSRB" / "Final_Test" / "Images",
                                                             base / "GT-final_test.csv")
    return _checked_files(samples, base, sources)


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
        return _checked_files(samples, base / "train", (base / "wnids.txt", base / "train"))
    annotations = base / "val" / "val_annotations.txt"
    samples = []
    for number, line in enumerate(annotations.read_text().splitlines(), start=1):
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in class_to_idx:
            raise CorruptDatasetError(f"{annotations}:{number}: bad line {line!r}")
        samples.append((str(base / "val" / "images" / fields[0]), class_to_idx[fields[1]]))
    return _checked_files(samples, annotations, (base / "wnids.txt", annotations, base / "val" / "images"))


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
    text = read_content(path)
    if verify:
        check_content_md5(path, text, DIGITS_MD5, "scikit-learn's digits", "Reinstall scikit-learn")
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
    return ArraySplit(images=torch.from_numpy(pixels), targets=torch.from_numpy(labels[keep]), sources=(path,))


__all__ = [
    "DIGITS_FILE", "FASHIONMNIST_MD5", "MNIST_GZ_MD5", "SKIP_CHECKSUMS", "ArraySplit", "FileSplit", "check_content_md5",
    "check_md5", "digits_split", "find_file", "parse_idx", "read_cifar", "read_content", "read_digits",
    "read_fashionmnist", "read_gtsrb", "read_idx", "read_mnist", "read_mnist_like", "read_svhn", "read_tinyimagenet",
]
