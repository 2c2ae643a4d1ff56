"""Provenance of loaded splits and streams: files read, sizes, sha256, what was verified."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from phn_tests_data_fixtures import write_mnist_like
from torch.utils.data import ConcatDataset, Subset

from phn.data import DATASETS, Experience, load_dataset, make_stream, stream_provenance
from phn.data import provenance as provenance_module
from phn.data import readers

NO_MD5 = {"verify_checksums": False}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _touch_later(path: Path) -> None:
    """Move the mtime on, as an edit a second later would (some filesystems have coarse clocks)."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def _flip_last_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    _touch_later(path)


def test_stream_provenance_lists_each_split_once_with_file_hashes(data_root):
    stream = make_stream("split-cifar10", root=data_root, **NO_MD5)
    records = stream_provenance(stream)
    assert [(r["dataset"], r["split"]) for r in records] == [("cifar10", "train"), ("cifar10", "test")]
    base = (data_root / "cifar-10-batches-py").resolve()
    train, test = records
    assert train["folder"] == str(data_root.resolve()) and train["checksum"] is None
    assert [f["path"] for f in train["files"]] == [str(base / f"data_batch_{i}") for i in range(1, 6)] + [
        str(base / "batches.meta")]
    assert [f["path"] for f in test["files"]] == [str(base / "test_batch"), str(base / "batches.meta")]
    for entry in train["files"] + test["files"]:
        path = Path(entry["path"])
        assert entry == {"path": str(path), "bytes": path.stat().st_size, "sha256": _sha256(path)}
    assert json.loads(json.dumps(records)) == records  # plain JSON data
    assert stream_provenance(make_stream("split-cifar10", root=data_root, seed=5, **NO_MD5)) == records


def test_cross_stream_lists_both_datasets_in_a_fixed_order(data_root):
    records = stream_provenance(make_stream("cross:svhn->cifar10", root=data_root, **NO_MD5))
    assert [(r["dataset"], r["split"]) for r in records] == [
        ("cifar10", "train"), ("cifar10", "test"), ("svhn", "train"), ("svhn", "test")]


def test_streams_without_files_have_no_provenance():
    from tiny import tiny_stream

    assert stream_provenance(tiny_stream()) == []


def test_subset_and_concat_are_walked_down_to_their_bases(data_root):
    train = load_dataset("svhn", True, data_root, **NO_MD5)
    test = load_dataset("svhn", False, data_root, **NO_MD5)
    experience = Experience(task_id=0, classes=(0, 1), train=Subset(train, [0, 1]),
                            test=ConcatDataset([Subset(test, [0]), test]), dataset="svhn", name="custom")
    assert stream_provenance([experience]) == [train.provenance, test.provenance]
    records = stream_provenance([experience])
    records[0]["files"].clear()  # callers get copies
    assert train.provenance["files"]


def test_the_file_read_is_recorded_plain_or_gz(tmp_path):
    write_mnist_like(tmp_path / "both", gz=True)
    write_mnist_like(tmp_path / "both", gz=False)  # torchvision's raw/ keeps both after a download
    ds = load_dataset("fashionmnist", False, tmp_path / "both", **NO_MD5)
    names = [Path(f["path"]).name for f in ds.provenance["files"]]
    assert names == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]  # the plain files are read
    write_mnist_like(tmp_path / "gz", gz=True)
    ds = load_dataset("fashionmnist", False, tmp_path / "gz", **NO_MD5)
    assert [Path(f["path"]).name for f in ds.provenance["files"]] == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_a_modified_byte_changes_the_provenance(tmp_path):
    folder = write_mnist_like(tmp_path / "fm", gz=False)
    before = load_dataset("fashionmnist", True, folder, **NO_MD5).provenance
    assert load_dataset("fashionmnist", True, folder, **NO_MD5).provenance == before
    _flip_last_byte(folder / "train-images-idx3-ubyte")
    after = load_dataset("fashionmnist", True, folder, **NO_MD5).provenance
    assert after["files"][0]["sha256"] != before["files"][0]["sha256"]
    assert after["files"][0]["bytes"] == before["files"][0]["bytes"] and after["files"][1] == before["files"][1]


def test_each_file_is_hashed_once_per_process(tmp_path):
    folder = write_mnist_like(tmp_path / "fm", gz=True)
    load_dataset("fashionmnist", True, folder, **NO_MD5)
    misses = provenance_module._cached_file_sha256.cache_info().misses
    for _ in range(3):
        load_dataset("fashionmnist", True, folder, **NO_MD5)
    assert provenance_module._cached_file_sha256.cache_info().misses == misses


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.relative_to(folder).as_posix()):
        name, content = path.relative_to(folder).as_posix().encode(), path.read_bytes()
        digest.update(len(name).to_bytes(8, "big") + name + len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


def test_folder_datasets_record_one_digest_per_folder(tmp_path, data_root):
    shutil.copytree(data_root / "gtsrb", tmp_path / "gtsrb")
    train = load_dataset("gtsrb", True, tmp_path).provenance
    training = tmp_path.resolve() / "gtsrb" / "GTSRB" / "Training"
    files = [p for p in training.rglob("*") if p.is_file()]
    assert train["files"] == [{"path": str(training), "count": len(files),
                               "bytes": sum(p.stat().st_size for p in files), "sha256": _folder_digest(training)}]
    assert train["checksum"] is None  # GTSRB has no published sums
    test = load_dataset("gtsrb", False, tmp_path).provenance
    assert [Path(f["path"]).name for f in test["files"]] == ["Images", "GT-final_test.csv"]
    assert test["files"][0]["count"] == 43 and "count" not in test["files"][1]
    image = sorted(training.rglob("*.ppm"))[5]
    _flip_last_byte(image)  # same size, new content: the folder's digest changes within the process
    changed = load_dataset("gtsrb", True, tmp_path).provenance["files"][0]
    assert changed["sha256"] == _folder_digest(training) != train["files"][0]["sha256"]
    assert changed["bytes"] == train["files"][0]["bytes"]


def test_tinyimagenet_records_annotations_and_image_folder(data_root):
    test = load_dataset("tinyimagenet", False, data_root).provenance
    base = data_root.resolve() / "tiny-imagenet-200"
    assert [f["path"] for f in test["files"]] == [
        str(base / "wnids.txt"), str(base / "val" / "val_annotations.txt"), str(base / "val" / "images")]
    assert test["files"][2]["count"] == 200


def test_verified_checksum_is_recorded(tmp_path, monkeypatch):
    folder = write_mnist_like(tmp_path / "fm", gz=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        content = readers.read_content(folder / f"{name}.gz")
        monkeypatch.setitem(readers.FASHIONMNIST_MD5, name, hashlib.md5(content).hexdigest())
    assert load_dataset("fashionmnist", False, folder).provenance["checksum"] == "md5 of decompressed content"
    assert load_dataset("fashionmnist", False, folder, **NO_MD5).provenance["checksum"] is None


def test_readers_that_report_nothing_get_the_registry_files(tmp_path, monkeypatch):
    def bare_reader(directory, train, verify):
        return dataclasses.replace(readers.read_mnist_like(directory, train, verify), sources=())

    monkeypatch.setitem(DATASETS, "fashionmnist", dataclasses.replace(DATASETS["fashionmnist"], reader=bare_reader))
    folder = write_mnist_like(tmp_path / "fm", gz=True)
    files = load_dataset("fashionmnist", True, folder, **NO_MD5).provenance["files"]
    assert [Path(f["path"]).name for f in files] == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
