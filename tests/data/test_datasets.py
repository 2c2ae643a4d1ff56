"""Dataset registry: loaders on generated files, roots, missing / corrupt data, checksums."""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from phn_tests_data_fixtures import TEST_PER_CLASS, TRAIN_PER_CLASS, write_cifar10, write_idx, write_mnist_like

from phn.data import (
    DATASETS,
    ChecksumError,
    CorruptDatasetError,
    DatasetNotFoundError,
    dataset_targets,
    get_dataset_info,
    load_dataset,
    resolve_verify_checksums,
)
from phn.data import datasets as datasets_module

NO_MD5 = {"verify_checksums": False}  # generated files have no published md5 sums
EXPECTED_SIZES = {  # (train, test) of the generated fixtures
    "fashionmnist": (40, 20), "mnist": (40, 20), "cifar10": (40, 20), "svhn": (40, 20),
    "cifar100": (400, 200), "gtsrb": (86, 43), "tinyimagenet": (400, 200), "digits": (60, 20),
}


def test_registry_lists_every_dataset_with_its_facts():
    assert set(DATASETS) == set(EXPECTED_SIZES)
    for info in DATASETS.values():
        assert len(info.mean) == len(info.std) == 3 and all(s > 0 for s in info.std)
        assert info.train_files and info.test_files and info.how_to_obtain
    assert get_dataset_info("cifar100").num_classes == 100 and get_dataset_info("tinyimagenet").num_classes == 200
    assert get_dataset_info("gtsrb").num_classes == 43 and get_dataset_info("fashionmnist").grayscale
    with pytest.raises(ValueError, match="registered"):
        get_dataset_info("imagenet")


@pytest.mark.parametrize("name", sorted(EXPECTED_SIZES))
@pytest.mark.parametrize("train", [True, False])
def test_loader_reads_generated_files(data_root, name, train):
    ds = load_dataset(name, train, data_root, verify_checksums=False)
    assert len(ds) == EXPECTED_SIZES[name][0 if train else 1]
    targets = dataset_targets(ds)
    assert targets.dtype == torch.long and targets.shape == (len(ds),)
    num_classes = get_dataset_info(name).num_classes
    assert targets.min() >= 0 and targets.max() < num_classes
    assert torch.equal(torch.bincount(targets, minlength=num_classes).unique(), torch.tensor([len(ds) // num_classes]))
    for index in (0, len(ds) - 1):
        x, y = ds[index]
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and isinstance(y, int)
        assert y == int(targets[index])


def test_grey_scale_becomes_three_equal_channels_resized_to_32(data_root):
    ds = load_dataset("mnist", False, data_root, transform="unnormalized", verify_checksums=False)
    x, _ = ds[5]
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
    assert torch.allclose(x, torch.full_like(x, 6 / 255))  # sample i is constant i + 1


def test_cifar_pixels_and_labels_match_the_pickles(data_root):
    ds = load_dataset("cifar10", True, data_root, transform="unnormalized", verify_checksums=False)
    with open(data_root / "cifar-10-batches-py" / "data_batch_2", "rb") as file:
        batch = pickle.load(file)
    first = 8  # data_batch_1 holds samples 0..7
    x, y = ds[first]
    expected = torch.from_numpy(batch["data"][0].reshape(3, 32, 32)).float() / 255
    assert torch.allclose(x, expected) and y == batch["labels"][0]


def test_svhn_label_ten_is_digit_zero(data_root):
    ds = load_dataset("svhn", True, data_root, verify_checksums=False)
    assert set(dataset_targets(ds).tolist()) == set(range(10))


def test_tinyimagenet_classes_follow_wnids_order(data_root):
    from phn_tests_data_fixtures import TINY_WNIDS

    ds = load_dataset("tinyimagenet", True, data_root)
    for path, label in zip(ds.paths[:20], dataset_targets(ds)[:20]):
        assert Path(path).parent.parent.name == TINY_WNIDS[int(label)]


def test_train_transform_augments_and_test_transform_does_not(data_root):
    train = load_dataset("cifar10", True, data_root, verify_checksums=False)
    test_style = load_dataset("cifar10", True, data_root, transform="test", verify_checksums=False)
    torch.manual_seed(0)
    draws = torch.stack([train[3][0] for _ in range(8)])
    assert not all(torch.equal(draws[0], d) for d in draws[1:])
    assert torch.equal(test_style[3][0], test_style[3][0])
    info = get_dataset_info("cifar10")
    raw = test_style.raw(3).float() / 255
    normalised = (raw - torch.tensor(info.mean)[:, None, None]) / torch.tensor(info.std)[:, None, None]
    assert torch.allclose(test_style[3][0], normalised, atol=1e-6)


def test_extra_transform_runs_before_normalize(data_root):
    ds = load_dataset("cifar10", False, data_root, transform="unnormalized", extra_transform=lambda x: 1 - x,
                      verify_checksums=False)
    assert torch.allclose(ds[0][0], 1 - ds.raw(0).float() / 255, atol=1e-6)


# ----------------------------------------------------------------------------- roots and layouts
@pytest.mark.parametrize("layout,gz", [("MNIST/raw", False), ("MNIST/raw", True), ("MNIST", True), ("mnist", False)])
def test_mnist_layouts(tmp_path, layout, gz):
    write_mnist_like(tmp_path / layout, gz=gz)
    assert len(load_dataset("mnist", True, tmp_path, verify_checksums=False)) == 10 * TRAIN_PER_CLASS


def test_flat_folder_passed_as_root(tmp_path):
    write_mnist_like(tmp_path / "flat", gz=True)
    assert len(load_dataset("fashionmnist", False, tmp_path / "flat", verify_checksums=False)) == 10 * TEST_PER_CLASS


def test_root_resolution_order(tmp_path, monkeypatch, data_root):
    monkeypatch.setenv("PHN_VERIFY_CHECKSUMS", "0")  # generated files
    monkeypatch.setenv("PHN_DATA", str(data_root))
    ds = load_dataset("mnist", True)  # found through $PHN_DATA
    assert ds.root == data_root / "MNIST" / "raw"
    write_mnist_like(tmp_path / "mine" / "MNIST" / "raw", gz=True)
    assert load_dataset("mnist", True, tmp_path / "mine").root == tmp_path / "mine" / "MNIST" / "raw"
    monkeypatch.delenv("PHN_DATA")
    repo_data = tmp_path / "repo-data"
    write_mnist_like(repo_data / "MNIST", gz=True)
    assert load_dataset("mnist", True).root == repo_data / "MNIST"


def test_explicit_root_that_does_not_exist_is_an_error(tmp_path, monkeypatch, data_root):
    monkeypatch.setenv("PHN_DATA", str(data_root))  # would hold the files: no silent fall-back to it
    missing = tmp_path / "typo"
    with pytest.raises(DatasetNotFoundError, match=f"data root {missing} .*does not exist") as caught:
        load_dataset("cifar10", True, missing, verify_checksums=False)
    assert len(str(caught.value).splitlines()) == 1
    (tmp_path / "a-file").write_text("")
    with pytest.raises(DatasetNotFoundError, match="is not a folder"):
        load_dataset("cifar10", True, tmp_path / "a-file", verify_checksums=False)


def test_phn_data_that_does_not_exist_is_an_error(tmp_path, monkeypatch, data_root):
    monkeypatch.setenv("PHN_DATA", str(tmp_path / "gone"))
    with pytest.raises(DatasetNotFoundError, match=rf"{tmp_path / 'gone'} \(from \$PHN_DATA\) does not exist"):
        load_dataset("cifar10", True, verify_checksums=False)
    with pytest.raises(DatasetNotFoundError, match="PHN_DATA"):  # even when root= holds the files
        load_dataset("cifar10", True, data_root, verify_checksums=False)
    monkeypatch.setenv("PHN_DATA", "")  # empty means unset
    assert len(load_dataset("cifar10", True, data_root, verify_checksums=False)) == 40


def test_download_creates_the_missing_first_root(tmp_path):
    from phn.data.datasets import check_data_roots

    check_data_roots(tmp_path / "new" / "root", create=True)
    assert (tmp_path / "new" / "root").is_dir()


def test_train_and_test_split_must_come_from_one_folder(tmp_path, monkeypatch):
    import dataclasses

    from phn.data import load_splits, make_stream

    system = write_mnist_like(tmp_path / "usr-share", gz=True)  # both splits, searched last
    monkeypatch.setitem(DATASETS, "fashionmnist",
                        dataclasses.replace(DATASETS["fashionmnist"], system_dirs=(str(system),)))
    env = write_mnist_like(tmp_path / "env" / "FashionMNIST" / "raw", gz=True)
    for path in env.glob("t10k-*"):
        path.unlink()  # $PHN_DATA holds the training files only
    monkeypatch.setenv("PHN_DATA", str(tmp_path / "env"))
    with pytest.raises(DatasetNotFoundError) as caught:
        make_stream("split-fashionmnist", verify_checksums=False)
    message = str(caught.value)
    assert str(env) in message and str(system) in message and "put both splits in one folder" in message
    assert len(message.splitlines()) == 1
    with pytest.raises(DatasetNotFoundError, match="both splits in one folder"):
        load_splits("fashionmnist", verify_checksums=False)
    monkeypatch.delenv("PHN_DATA")
    train, test = load_splits("fashionmnist", verify_checksums=False)
    assert train.root == test.root == system


def test_repo_data_dir_is_parent_of_package(monkeypatch):
    import phn

    monkeypatch.undo()  # drop the isolation of conftest.py to see the real default
    assert datasets_module.data_roots()[-1].parent == Path(phn.__file__).resolve().parent.parent


@pytest.mark.real_data
def test_system_folder_read_in_place_without_writing(tmp_path):
    system = Path("/usr/share/datasets/fashion-mnist")
    if not system.is_dir():
        pytest.skip("dataset-fashion-mnist not installed (/usr/share/datasets/fashion-mnist absent)")
    before = sorted((p.name, p.stat().st_mtime) for p in system.iterdir())
    (tmp_path / "empty").mkdir()
    ds = load_dataset("fashionmnist", False, tmp_path / "empty")
    assert ds.root == system and len(ds) == 10000
    assert sorted((p.name, p.stat().st_mtime) for p in system.iterdir()) == before


# ----------------------------------------------------------------------------- missing data
@pytest.mark.parametrize("name", sorted(EXPECTED_SIZES))
def test_missing_dataset_lists_searched_paths_and_instructions(tmp_path, monkeypatch, name):
    (tmp_path / "env-root").mkdir()  # roots that exist but hold nothing (missing roots: see below)
    (tmp_path / "arg-root").mkdir()
    monkeypatch.setenv("PHN_DATA", str(tmp_path / "env-root"))
    with pytest.raises(DatasetNotFoundError) as caught:
        load_dataset(name, True, tmp_path / "arg-root")
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError) and repr(name) in message
    for folder in datasets_module.search_dirs(name, tmp_path / "arg-root"):
        assert str(folder) in message
    assert str(tmp_path / "env-root") in message and str(tmp_path / "repo-data") in message
    assert all(f in message for f in get_dataset_info(name).train_files)
    # every remedy is named: a download where one exists, scikit-learn for its bundled digits
    assert ("pip install scikit-learn" if name == "digits" else "download=True") in message
    if name != "digits":
        assert "or, on a machine with internet access, pass --download (CLI) or download=True (Python)" in message


def test_missing_messages_name_the_sources(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashionmnist", root=tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/"):
        load_dataset("cifar100", root=tmp_path)


def test_system_folders_are_searched_last_and_listed(tmp_path, monkeypatch):
    import dataclasses

    info = dataclasses.replace(DATASETS["fashionmnist"], system_dirs=(str(tmp_path / "usr-share"),))
    monkeypatch.setitem(DATASETS, "fashionmnist", info)
    (tmp_path / "arg").mkdir()
    with pytest.raises(DatasetNotFoundError) as caught:
        load_dataset("fashionmnist", root=tmp_path / "arg")
    assert str(caught.value).index(str(tmp_path / "arg")) < str(caught.value).index(str(tmp_path / "usr-share"))
    write_mnist_like(tmp_path / "usr-share", gz=True)
    assert load_dataset("fashionmnist", root=tmp_path / "arg", verify_checksums=False).root == tmp_path / "usr-share"


def test_partial_data_is_reported(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DatasetNotFoundError, match="partial: missing cifar-10-batches-py/data_batch_3"):
        load_dataset("cifar10", True, tmp_path, verify_checksums=False)


# ----------------------------------------------------------------------------- corrupt data
def _copy(data_root: Path, relative: str, tmp_path: Path) -> Path:
    shutil.copytree(data_root / relative, tmp_path / relative)
    return tmp_path


def test_truncated_idx_names_the_file(tmp_path):
    folder = write_mnist_like(tmp_path / "MNIST" / "raw", gz=False)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptDatasetError, match="train-images-idx3-ubyte.*truncated"):
        load_dataset("mnist", True, tmp_path, verify_checksums=False)


def test_truncated_gzip_names_the_file(tmp_path):
    folder = write_mnist_like(tmp_path / "MNIST" / "raw", gz=True)
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(CorruptDatasetError, match="t10k-images-idx3-ubyte.gz.*decompress"):
        load_dataset("mnist", False, tmp_path, verify_checksums=False)


def test_label_count_mismatch(tmp_path):
    folder = write_mnist_like(tmp_path / "MNIST" / "raw", gz=True)
    write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(7, dtype=np.uint8), gz=True)
    with pytest.raises(CorruptDatasetError, match="20 images but .* 7 labels"):
        load_dataset("mnist", False, tmp_path, verify_checksums=False)


def test_unpicklable_cifar_file(tmp_path, data_root):
    root = _copy(data_root, "cifar-100-python", tmp_path)
    path = root / "cifar-100-python" / "test"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(CorruptDatasetError, match="cifar-100-python/test"):
        load_dataset("cifar100", False, root, verify_checksums=False)


def test_corrupt_mat_file(tmp_path, data_root):
    root = _copy(data_root, "svhn", tmp_path)
    path = root / "svhn" / "test_32x32.mat"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CorruptDatasetError, match="test_32x32.mat"):
        load_dataset("svhn", False, root, verify_checksums=False)


def test_missing_image_listed_in_annotations(tmp_path, data_root):
    root = _copy(data_root, "tiny-imagenet-200", tmp_path)
    (root / "tiny-imagenet-200" / "val" / "images" / "val_7.JPEG").unlink()
    with pytest.raises(CorruptDatasetError, match="val_7.JPEG"):
        load_dataset("tinyimagenet", False, root)


def test_undecodable_image_raises_on_access(tmp_path, data_root):
    root = _copy(data_root, "gtsrb", tmp_path)
    ds = load_dataset("gtsrb", False, root)
    Path(ds.paths[3]).write_bytes(b"not an image")
    with pytest.raises(CorruptDatasetError, match=os.path.basename(ds.paths[3])):
        ds[3]


# ----------------------------------------------------------------------------- checksums
@pytest.mark.parametrize("name", ["cifar10", "cifar100", "svhn", "digits", "fashionmnist", "mnist"])
def test_checksums_checked_by_default_and_skippable(data_root, monkeypatch, name):
    with pytest.raises(ChecksumError, match="md5.*verify_checksums=False"):
        load_dataset(name, False, data_root)
    assert len(load_dataset(name, False, data_root, verify_checksums=False)) > 0
    for value in ("0", "false"):
        monkeypatch.setenv("PHN_VERIFY_CHECKSUMS", value)
        assert len(load_dataset(name, False, data_root)) > 0
    with pytest.raises(ChecksumError):
        load_dataset(name, False, data_root, verify_checksums=True)  # the argument wins over the variable


def test_checksum_errors_name_every_way_to_skip_the_check(data_root, tmp_path):
    folder = write_mnist_like(tmp_path / "MNIST" / "raw", gz=True)
    for name, root in (("cifar10", data_root), ("digits", data_root), ("fashionmnist", data_root), ("mnist", tmp_path)):
        with pytest.raises(ChecksumError) as caught:
            load_dataset(name, False, root)
        message = str(caught.value)
        assert len(message.splitlines()) == 1 and "md5" in message
        for switch in ("--no-verify-checksums", "verify_checksums=False", "PHN_VERIFY_CHECKSUMS=0"):
            assert switch in message, (name, message)
    assert str(folder / "t10k-images-idx3-ubyte.gz") in message


def test_fashionmnist_checks_the_decompressed_content(tmp_path, monkeypatch):
    from phn.data import readers

    gz = write_mnist_like(tmp_path / "gz", gz=True)
    plain = write_mnist_like(tmp_path / "plain", gz=False)
    for folder in (gz, plain):
        with pytest.raises(ChecksumError, match="md5 of the decompressed content does not match Fashion-MNIST"):
            load_dataset("fashionmnist", True, folder)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):  # sums of the generated content
        monkeypatch.setitem(readers.FASHIONMNIST_MD5, name, hashlib.md5((plain / name).read_bytes()).hexdigest())
    assert len(load_dataset("fashionmnist", True, gz)) == len(load_dataset("fashionmnist", True, plain)) == 40


def test_mnist_checks_the_gz_against_torchvision(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    from phn.data import readers

    assert readers.MNIST_GZ_MD5 == dict(tvd.MNIST.resources)
    plain = write_mnist_like(tmp_path / "plain" / "MNIST" / "raw", gz=False)
    with pytest.raises(ChecksumError, match=r"t10k-images-idx3-ubyte: cannot verify a decompressed file.*"
                                            r"put t10k-images-idx3-ubyte.gz beside it.*--no-verify-checksums"):
        load_dataset("mnist", False, tmp_path / "plain")
    assert len(load_dataset("mnist", False, tmp_path / "plain", verify_checksums=False)) == 20
    both = write_mnist_like(tmp_path / "both" / "MNIST" / "raw", gz=True)
    write_mnist_like(both, gz=False)
    with pytest.raises(ChecksumError, match="published sum"):
        load_dataset("mnist", False, tmp_path / "both")
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        monkeypatch.setitem(readers.MNIST_GZ_MD5, name, hashlib.md5((both / name).read_bytes()).hexdigest())
    verified = load_dataset("mnist", False, tmp_path / "both")  # the .gz is read: the file checked is the file read
    assert [Path(f["path"]).name for f in verified.provenance["files"]] == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert verified.provenance["checksum"] == "md5"
    assert not list(plain.glob("*.gz"))


def test_resolve_verify_checksums(monkeypatch):
    assert resolve_verify_checksums() is True
    monkeypatch.setenv("PHN_VERIFY_CHECKSUMS", "1")
    assert resolve_verify_checksums() is True and resolve_verify_checksums(False) is False
    monkeypatch.setenv("PHN_VERIFY_CHECKSUMS", "0")
    assert resolve_verify_checksums() is False


# ----------------------------------------------------------------------------- targets helper
def test_dataset_targets_of_wrappers(data_root):
    ds = load_dataset("mnist", False, data_root, verify_checksums=False)
    targets = dataset_targets(ds)
    subset = torch.utils.data.Subset(ds, [3, 1, 4])
    assert dataset_targets(subset).tolist() == targets[[3, 1, 4]].tolist()
    both = torch.utils.data.ConcatDataset([ds, subset])
    assert len(dataset_targets(both)) == len(ds) + 3
    with pytest.raises(TypeError):
        dataset_targets([(torch.zeros(3), 1)])


def test_gzip_is_never_written_next_to_the_data(tmp_path):
    folder = write_mnist_like(tmp_path / "ro", gz=True)
    before = sorted(os.listdir(folder))
    os.chmod(folder, 0o555)
    try:
        assert len(load_dataset("fashionmnist", True, folder, verify_checksums=False)) == 40
    finally:
        os.chmod(folder, 0o755)
    assert sorted(os.listdir(folder)) == before and all(n.endswith(".gz") for n in before)
    assert gzip.decompress((folder / before[0]).read_bytes())[:2] == b"\x00\x00"


# ----------------------------------------------------------------------------- digits
def test_digits_split_is_fixed_stratified_and_disjoint(data_root):
    from phn.data.readers import digits_split

    labels = np.repeat(np.arange(3), 8)[np.random.default_rng(0).permutation(24)]
    train, test = digits_split(labels, True), digits_split(labels, False)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(24))
    assert np.bincount(labels[test]).tolist() == [2, 2, 2]  # every fourth image of each class
    for label in range(3):
        in_class = np.flatnonzero(labels == label)
        assert test[labels[test] == label].tolist() == in_class[[3, 7]].tolist()
    ds = load_dataset("digits", False, data_root, verify_checksums=False)
    x, _ = load_dataset("digits", False, data_root, transform="unnormalized", verify_checksums=False)[0]
    assert x.shape == (3, 32, 32) and torch.allclose(x, torch.full_like(x, x[0, 0, 0]))  # a constant image
    assert len(ds) == 20


def test_truncated_digits_file_names_it(tmp_path):
    from phn_tests_data_fixtures import write_digits

    path = write_digits(tmp_path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CorruptDatasetError, match="digits.csv.gz"):
        load_dataset("digits", True, tmp_path, verify_checksums=False)


@pytest.mark.real_data
def test_real_digits_from_scikit_learn(monkeypatch):
    """scikit-learn's own copy: 1,797 images, split 1,352 / 445, md5 verified, statistics as registered."""
    pytest.importorskip("sklearn")
    from torchvision.transforms.v2 import functional as F

    train = load_dataset("digits", True, transform="unnormalized")
    test = load_dataset("digits", False)
    assert (len(train), len(test)) == (1352, 445) and "sklearn" in str(train.root)
    from sklearn.datasets import load_digits

    reference = load_digits()
    assert torch.equal(torch.sort(torch.cat([train.targets, test.targets])).values,
                       torch.sort(torch.as_tensor(reference.target)).values)
    images = torch.stack([train[i][0] for i in range(len(train))])
    info = get_dataset_info("digits")
    assert abs(images.mean().item() - info.mean[0]) < 1e-3 and abs(images.std().item() - info.std[0]) < 1e-3
    assert F.resize(train.images[:1], [32, 32]).shape == (1, 1, 32, 32)


def test_reads_are_cached_per_process_until_the_files_change(tmp_path):
    folder = write_mnist_like(tmp_path / "mnist", gz=False)
    first, second = load_dataset("mnist", True, folder, **NO_MD5), load_dataset("mnist", True, folder, **NO_MD5)
    assert first.images is second.images  # read and resized once
    images = folder / "train-images-idx3-ubyte"
    raw = bytearray(images.read_bytes())
    raw[-1] = 200  # one pixel of the last image changes (same size)
    images.write_bytes(bytes(raw))
    os.utime(images, ns=(images.stat().st_atime_ns, images.stat().st_mtime_ns + 10**9))
    third = load_dataset("mnist", True, folder, **NO_MD5)
    assert third.images is not first.images and not torch.equal(third.images, first.images)
