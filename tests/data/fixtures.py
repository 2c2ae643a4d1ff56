"""Writers of tiny datasets in the REAL on-disk formats, for tests without network or real data.

Every writer puts its files under ``root`` in the layout the library searches, with few images
per class. Sample ``i`` is recognisable after loading:

* MNIST-like: image ``i`` is constant with value ``i + 1`` (survives the 28 -> 32 resize);
* CIFAR / SVHN: random texture with pixel (channel 0, row 0, col 0) equal to ``i % 256``.

Labels are shuffled with a fixed seed so that "first N of each class in index order" is not
the same as "the first N samples".
"""

from __future__ import annotations

import csv
import gzip
import pickle
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

TRAIN_PER_CLASS = 4
TEST_PER_CLASS = 2


def shuffled_labels(num_classes: int, per_class: int, seed: int) -> np.ndarray:
    """Labels with exactly ``per_class`` of each class, in a seeded random order."""
    labels = np.repeat(np.arange(num_classes), per_class)
    return np.random.default_rng(seed).permutation(labels)


def textured_images(n: int, seed: int) -> np.ndarray:
    """uint8 (n, 32, 32, 3) random textures; pixel [i, 0, 0, 0] = i % 256."""
    images = np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(n) % 256
    return images


# ----------------------------------------------------------------------------- idx (MNIST family)
def write_idx(path: Path, array: np.ndarray, gz: bool) -> Path:
    """Write a uint8 array as an idx file (``path`` + ".gz" when ``gz``)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload, compresslevel=1))
    else:
        path.write_bytes(payload)
    return path


def write_mnist_like(folder: Path, gz: bool = True, seed: int = 0) -> Path:
    """The four idx files of a 10-class MNIST-like dataset directly in ``folder``."""
    for prefix, per_class in (("train", TRAIN_PER_CLASS), ("t10k", TEST_PER_CLASS)):
        labels = shuffled_labels(10, per_class, seed + (prefix == "t10k"))
        images = np.broadcast_to((np.arange(len(labels)) + 1)[:, None, None], (len(labels), 28, 28))
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images.astype(np.uint8), gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels.astype(np.uint8), gz)
    return folder


# ----------------------------------------------------------------------------- CIFAR pickles
def _pickle(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        pickle.dump(obj, file)


def _cifar_rows(images: np.ndarray) -> np.ndarray:
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # HWC -> the 3072-byte CHW rows


def write_cifar10(root: Path) -> Path:
    """``root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``."""
    base = root / "cifar-10-batches-py"
    labels = shuffled_labels(10, TRAIN_PER_CLASS, 1)
    rows = _cifar_rows(textured_images(len(labels), 1))
    for i, chunk in enumerate(np.array_split(np.arange(len(labels)), 5), start=1):
        _pickle(base / f"data_batch_{i}", {"batch_label": f"batch {i}", "data": rows[chunk],
                                           "labels": labels[chunk].tolist()})
    test_labels = shuffled_labels(10, TEST_PER_CLASS, 2)
    _pickle(base / "test_batch", {"data": _cifar_rows(textured_images(len(test_labels), 2)),
                                  "labels": test_labels.tolist()})
    _pickle(base / "batches.meta", {"label_names": [f"class{c}" for c in range(10)]})
    return root


def write_cifar100(root: Path) -> Path:
    """``root/cifar-100-python/{train, test, meta}`` with ``fine_labels``."""
    base = root / "cifar-100-python"
    for split, per_class, seed in (("train", TRAIN_PER_CLASS, 3), ("test", TEST_PER_CLASS, 4)):
        labels = shuffled_labels(100, per_class, seed)
        _pickle(base / split, {"data": _cifar_rows(textured_images(len(labels), seed)),
                               "fine_labels": labels.tolist(), "coarse_labels": (labels // 5).tolist()})
    _pickle(base / "meta", {"fine_label_names": [f"fine{c}" for c in range(100)],
                            "coarse_label_names": [f"coarse{c}" for c in range(20)]})
    return root


# ----------------------------------------------------------------------------- SVHN .mat
def write_svhn(root: Path) -> Path:
    """``root/svhn/{train,test}_32x32.mat``: X (32, 32, 3, N), y (N, 1) in 1..10 (10 = digit 0)."""
    for split, per_class, seed in (("train", TRAIN_PER_CLASS, 5), ("test", TEST_PER_CLASS, 6)):
        digits = shuffled_labels(10, per_class, seed)
        images = textured_images(len(digits), seed)
        y = np.where(digits == 0, 10, digits).astype(np.uint8)[:, None]
        (root / "svhn").mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(root / "svhn" / f"{split}_32x32.mat", {"X": images.transpose(1, 2, 3, 0), "y": y})
    return root


# ----------------------------------------------------------------------------- GTSRB (torchvision layout)
def _image(size: tuple[int, int], seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def write_gtsrb(root: Path, train_per_class: int = 2, test_per_class: int = 1) -> Path:
    """``root/gtsrb/GTSRB/Training/000NN/*.ppm``, ``.../Final_Test/Images/*.ppm``, ``GT-final_test.csv``."""
    base = root / "gtsrb"
    for c in range(43):
        folder = base / "GTSRB" / "Training" / f"{c:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(train_per_class):
            _image((20 + c % 7, 25 + k), seed=100 * c + k).save(folder / f"00000_{k:05d}.ppm")
        (folder / f"GT-{c:05d}.csv").write_text("Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n")
    images = base / "GTSRB" / "Final_Test" / "Images"
    images.mkdir(parents=True, exist_ok=True)
    with open(base / "GT-final_test.csv", "w", newline="") as file:
        writer = csv.writer(file, delimiter=";")
        writer.writerow(["Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId"])
        for i, c in enumerate(shuffled_labels(43, test_per_class, 7)):
            name = f"{i:05d}.ppm"
            _image((30 + i % 5, 33), seed=9000 + i).save(images / name)
            writer.writerow([name, 30 + i % 5, 33, 1, 1, 28, 31, int(c)])
    return root


# ----------------------------------------------------------------------------- TinyImageNet-200
TINY_WNIDS = [f"n{(7919 * k) % 100000:08d}" for k in range(1, 201)]  # deliberately not sorted


def write_tinyimagenet(root: Path, train_per_class: int = 2, val_per_class: int = 1) -> Path:
    """``root/tiny-imagenet-200/{wnids.txt, train/<wnid>/images/*.JPEG, val/images, val_annotations.txt}``."""
    base = root / "tiny-imagenet-200"
    base.mkdir(parents=True, exist_ok=True)
    (base / "wnids.txt").write_text("\n".join(TINY_WNIDS) + "\n")
    for c, wnid in enumerate(TINY_WNIDS):
        folder = base / "train" / wnid / "images"
        folder.mkdir(parents=True, exist_ok=True)
        (base / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for k in range(train_per_class):
            _image((64, 64), seed=c * 10 + k).save(folder / f"{wnid}_{k}.JPEG", quality=90)
    (base / "val" / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, c in enumerate(shuffled_labels(200, val_per_class, 8)):
        _image((64, 64), seed=50000 + i).save(base / "val" / "images" / f"val_{i}.JPEG", quality=90)
        lines.append(f"val_{i}.JPEG\t{TINY_WNIDS[c]}\t0\t0\t63\t63")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return root


def write_digits(root: Path, per_class: int = 8, seed: int = 30) -> Path:
    """``root/digits/digits.csv.gz`` as scikit-learn ships it: rows of 64 pixel values in 0..16 and the
    label. Row i has every pixel equal to i % 17, so images are recognisable after loading; 8 rows
    per class give 6 train and 2 test images per class under the fixed split."""
    labels = shuffled_labels(10, per_class, seed)
    rows = [",".join([str(i % 17)] * 64 + [str(label)]) for i, label in enumerate(labels)]
    path = root / "digits" / "digits.csv.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
    return path


def write_all(root: Path) -> Path:
    """Every dataset above under one data root (MNIST in torchvision's raw/ layout, plain files;
    FashionMNIST flat and gzipped in ``root/fashion-mnist``)."""
    write_mnist_like(root / "MNIST" / "raw", gz=False, seed=10)
    write_mnist_like(root / "fashion-mnist", gz=True, seed=20)
    for writer in (write_cifar10, write_cifar100, write_svhn, write_gtsrb, write_tinyimagenet, write_digits):
        writer(root)
    return root
