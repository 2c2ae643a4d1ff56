"""Streams: class partitions, local labels, seeds, explicit orders, per-class caps, cross-dataset."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from phn.data import (
    ClassSubset,
    dataset_targets,
    get_dataset_info,
    load_dataset,
    resolve_class_order,
    split_cifar100,
    split_dataset,
    split_fashionmnist,
    split_tinyimagenet,
)
from phn.data.streams import cross_dataset_stream

NO_MD5 = {"verify_checksums": False}


def _unnormalise(x: torch.Tensor, name: str) -> torch.Tensor:
    info = get_dataset_info(name)
    return x * torch.tensor(info.std)[:, None, None] + torch.tensor(info.mean)[:, None, None]


def test_split_partition_is_disjoint_and_complete(data_root):
    stream = split_cifar100(root=data_root, **NO_MD5)
    assert len(stream) == 20 and [e.task_id for e in stream] == list(range(20))
    classes = [c for e in stream for c in e.classes]
    assert sorted(classes) == list(range(100)) and all(len(e.classes) == 5 for e in stream)
    for e in stream:
        assert len(e.train) == 5 * 4 and len(e.test) == 5 * 2 and e.dataset == "cifar100"


def test_other_builders_have_the_paper_shapes(data_root):
    tiny = split_tinyimagenet(root=data_root)
    assert [len(e.classes) for e in tiny] == [10] * 20 and len(tiny[0].train) == 20
    fashion = split_fashionmnist(root=data_root, **NO_MD5)
    assert [len(e.classes) for e in fashion] == [2] * 5


def test_local_labels_map_back_to_original_classes(data_root):
    stream = split_dataset("cifar10", 5, seed=3, root=data_root, **NO_MD5)
    full = load_dataset("cifar10", False, data_root, **NO_MD5)
    original = dataset_targets(full)
    for e in stream:
        for split in (e.train, e.test):
            local = dataset_targets(split)
            assert set(local.tolist()) == set(range(e.num_classes))
            assert torch.equal(torch.tensor(e.classes)[local], split.original_targets)
        for i in range(len(e.test)):  # item-level: pixel (0, 0, 0) of sample j encodes j
            x, y = e.test[i]
            j = round(float(_unnormalise(x, "cifar10")[0, 0, 0]) * 255)
            assert e.classes[y] == int(original[j]) and y == int(dataset_targets(e.test)[i])


def test_seeded_class_order_is_local_and_reproducible(data_root):
    torch.manual_seed(123)
    a = [e.classes for e in split_dataset("cifar100", 20, seed=7, root=data_root, **NO_MD5)]
    torch.manual_seed(999)  # global state must not matter
    b = [e.classes for e in split_dataset("cifar100", 20, seed=7, root=data_root, **NO_MD5)]
    c = [e.classes for e in split_dataset("cifar100", 20, seed=8, root=data_root, **NO_MD5)]
    assert a == b and a != c


def test_seeded_order_matches_avalanche_convention():
    torch.manual_seed(5)
    assert resolve_class_order(100, seed=5) == torch.randperm(100).tolist()


def test_explicit_class_order_is_respected(data_root):
    order = [9, 0, 8, 1, 7, 2]
    stream = split_dataset("cifar10", 3, class_order=order, root=data_root, **NO_MD5)
    assert [e.classes for e in stream] == [(9, 0), (8, 1), (7, 2)]
    assert dataset_targets(stream[0].train).tolist().count(0) == 4  # class 9 is local label 0


@pytest.mark.parametrize("order,match", [
    ([1, 2, 2, 3], "repeats"), ([0, 10], "invalid"), ([-1, 3], "invalid"), ([], "empty"), ([0.5, 1], "invalid"),
])
def test_invalid_class_order_is_rejected(data_root, order, match):
    with pytest.raises(ValueError, match=match):
        split_dataset("cifar10", 1, class_order=order, root=data_root, **NO_MD5)


def test_invalid_split_sizes_are_rejected(data_root):
    with pytest.raises(ValueError, match="evenly"):
        split_dataset("cifar10", 3, root=data_root, **NO_MD5)
    with pytest.raises(ValueError, match="only 10 available"):
        split_dataset("cifar10", 3, 4, root=data_root, **NO_MD5)
    partial = split_dataset("cifar10", 3, 3, root=data_root, **NO_MD5)
    assert sum(len(e.classes) for e in partial) == 9


def test_max_per_class_keeps_the_first_images_in_index_order(data_root):
    stream = split_dataset("cifar10", 5, max_per_class=3, max_per_class_test=1, root=data_root, **NO_MD5)
    train_targets = dataset_targets(load_dataset("cifar10", True, data_root, **NO_MD5))
    for e in stream:
        expected = sorted(i for c in e.classes for i in torch.nonzero(train_targets == c).flatten()[:3].tolist())
        assert e.train.indices.tolist() == expected
        assert len(e.test) == e.num_classes * 1


def test_max_per_class_caps_test_too_unless_told_otherwise(data_root):
    both = split_dataset("cifar10", 5, max_per_class=1, root=data_root, **NO_MD5)
    assert len(both[0].train) == 2 and len(both[0].test) == 2
    full_test = split_dataset("cifar10", 5, max_per_class=1, max_per_class_test="all", root=data_root, **NO_MD5)
    assert len(full_test[0].train) == 2 and len(full_test[0].test) == 4
    with pytest.raises(ValueError, match="positive"):
        split_dataset("cifar10", 5, max_per_class=0, root=data_root, **NO_MD5)


def test_missing_class_is_an_error_not_an_empty_experience(data_root):
    base = load_dataset("cifar10", True, data_root, **NO_MD5)
    with pytest.raises(Exception, match="no images of classes"):
        ClassSubset(base, (0, 11), transform=lambda x: x)


def test_train_is_augmented_and_test_is_not(data_root):
    e = split_dataset("cifar10", 5, root=data_root, **NO_MD5)[0]
    torch.manual_seed(0)
    assert not all(torch.equal(e.train[0][0], e.train[0][0]) for _ in range(5))
    assert torch.equal(e.test[0][0], e.test[0][0])
    plain = split_dataset("cifar10", 5, augment=False, root=data_root, **NO_MD5)[0]
    assert torch.equal(plain.train[0][0], plain.train[0][0])


def test_cross_dataset_stream_uses_each_datasets_statistics(data_root):
    stream = cross_dataset_stream("cifar10", "svhn", classes_per_experience=5, seed=1, root=data_root, **NO_MD5)
    assert [e.dataset for e in stream] == ["cifar10", "svhn"] and [e.task_id for e in stream] == [0, 1]
    assert all(len(e.classes) == 5 and len(e.test) == 10 for e in stream)
    for e in stream:
        x, _ = e.test[0]
        raw = e.test.base.raw(int(e.test.indices[0])).float() / 255
        assert torch.allclose(_unnormalise(x, e.dataset), raw, atol=1e-5)
    again = cross_dataset_stream("cifar10", "svhn", 5, seed=1, root=data_root, **NO_MD5)
    assert [e.classes for e in again] == [e.classes for e in stream]
    with pytest.raises(ValueError, match="cannot take 11 classes"):
        cross_dataset_stream("mnist", "cifar10", 11, root=data_root, **NO_MD5)


def test_cross_dataset_grey_to_colour(data_root):
    stream = cross_dataset_stream("mnist", "cifar100", 5, root=data_root, **NO_MD5)
    shapes = {tuple(e.train[0][0].shape) for e in stream}
    assert shapes == {(3, 32, 32)}


def test_dataloader_batches(data_root):
    e = split_dataset("mnist", 5, root=data_root, **NO_MD5)[1]
    x, y = next(iter(DataLoader(e.train, batch_size=6, shuffle=True)))
    assert x.shape == (6, 3, 32, 32) and y.dtype == torch.long and set(y.tolist()) <= {0, 1}


def test_experiences_pickle_for_spawned_workers(data_root):
    import pickle

    from phn.data import noisy_stream

    for e in noisy_stream("cifar100", 3, 5, augment=False, root=data_root, **NO_MD5) + split_tinyimagenet(augment=False, root=data_root):
        clone = pickle.loads(pickle.dumps(e))
        assert clone.classes == e.classes and torch.equal(clone.train[1][0], e.train[1][0])


def test_numpy_class_order_is_accepted(data_root):
    import numpy as np

    stream = split_dataset("cifar10", 2, 2, class_order=np.array([4, 2, 0, 1]), root=data_root, **NO_MD5)
    assert [e.classes for e in stream] == [(4, 2), (0, 1)] and type(stream[0].classes[0]) is int


def test_cross_stream_of_one_dataset_takes_disjoint_classes(data_root):
    stream = cross_dataset_stream("cifar10", "cifar10", 5, seed=3, root=data_root, **NO_MD5)
    first, second = (set(e.classes) for e in stream)
    assert len(first) == len(second) == 5 and not first & second
    with pytest.raises(ValueError, match="disjoint"):
        cross_dataset_stream("cifar10", "cifar10", 6, root=data_root, **NO_MD5)


def test_cross_stream_accepts_digits(data_root):
    stream = cross_dataset_stream("digits", "mnist", 5, seed=0, root=data_root, **NO_MD5)
    assert [e.dataset for e in stream] == ["digits", "mnist"]
    assert stream[0].train[0][0].shape == (3, 32, 32)


def test_normal_twin_of_the_noisy_stream(data_root):
    from phn.data import make_stream, sample_images

    noisy = make_stream("noisy-cifar100", seed=2, root=data_root, augment=False, **NO_MD5)
    normal = make_stream("noisy-cifar100", seed=2, root=data_root, augment=False, corrupt=False, **NO_MD5)
    assert [e.classes for e in noisy] == [e.classes for e in normal]
    assert [e.noise for e in noisy] == ["clean", "solarize", "blur", "autocontrast-gray-blur"]
    assert [e.noise for e in normal] == [None] * 4
    assert torch.equal(noisy[0].test[0][0], normal[0].test[0][0])  # experience 1 is the same
    assert not torch.equal(noisy[1].test[0][0], normal[1].test[0][0])
    images, labels = sample_images(noisy[1], 3)
    assert images.shape == (3, 3, 32, 32) and 0 <= images.min() and images.max() <= 1 and labels.tolist() == [
        int(v) for v in noisy[1].test.targets[:3]]
    clean, _ = sample_images(normal[1], 3)
    assert torch.equal(images, torch.where(clean >= 0.5, 1 - clean, clean))  # solarized
    with pytest.raises(ValueError, match="noisy streams only"):
        make_stream("split-cifar10", corrupt=False, root=data_root, **NO_MD5)
