"""make_stream names and the frozen StreamConfig."""

from __future__ import annotations

import dataclasses
import json

import pytest

from phn.data import DATASETS, StreamConfig, make_stream, parse_stream_name, stream_names


@pytest.mark.parametrize("name,shape", [
    ("split-fashionmnist", (5, 2)), ("split-mnist", (5, 2)), ("split-cifar10", (5, 2)), ("split-svhn", (5, 2)),
    ("split-cifar100", (20, 5)), ("split-tinyimagenet", (20, 10)), ("split-gtsrb", (8, 5)),
    ("noisy-cifar100", (4, 5)), ("noisy-fashionmnist", (4, 2)), ("cross:cifar10->mnist", (2, 5)),
])
def test_named_streams_have_their_default_shapes(data_root, name, shape):
    stream = make_stream(name, root=data_root, verify_checksums=False)
    assert (len(stream), len(stream[0].classes)) == shape
    assert all(e.name.startswith(name) for e in stream)


def test_every_listed_name_parses():
    for name in stream_names()[:-1]:
        parse_stream_name(name)
    assert {parse_stream_name(f"split-{d}")[1][0] for d in DATASETS} == set(DATASETS)
    assert parse_stream_name("cross:svhn->gtsrb") == ("cross", ("svhn", "gtsrb"))


@pytest.mark.parametrize("name", ["split-imagenet", "cifar100", "mixed-cifar10", "cross:cifar10", "cross:a->b", ""])
def test_unknown_names_list_the_valid_ones(name):
    with pytest.raises(ValueError, match="valid names: split-fashionmnist"):
        make_stream(name)


def test_overrides_and_none_defaults(data_root):
    stream = make_stream("split-cifar100", num_experiences=10, root=data_root, verify_checksums=False)
    assert [len(e.classes) for e in stream] == [10] * 10
    stream = make_stream("split-cifar10", classes_per_experience=5, num_experiences=None, class_order=None,
                         root=data_root, verify_checksums=False)
    assert len(stream) == 2
    with pytest.raises(ValueError, match="exactly 2"):
        make_stream("cross:cifar10->mnist", num_experiences=3, root=data_root)


def test_stream_config_builds_and_round_trips_through_json(data_root):
    cfg = StreamConfig(name="split-cifar10", seed=3, class_order=[1, 0, 3, 2], num_experiences=2,
                       max_per_class=2, verify_checksums=False)
    assert cfg.class_order == (1, 0, 3, 2)
    stream = cfg.build(root=data_root)
    assert [e.classes for e in stream] == [(1, 0), (3, 2)] and len(stream[0].train) == 4
    again = StreamConfig(**json.loads(json.dumps(dataclasses.asdict(cfg))))
    assert again == cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1


@pytest.mark.parametrize("bad", [{"name": "split-nope"}, {"max_per_class": 0}, {"num_experiences": -1},
                                 {"max_per_class_test": "some"}, {"classes_per_experience": True}])
def test_stream_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        StreamConfig(**bad)


def test_stream_config_works_with_the_shared_from_dict():
    config = pytest.importorskip("phn.config")
    if not hasattr(config, "from_dict"):
        pytest.skip("phn.config.from_dict not available")
    cfg = config.from_dict(StreamConfig, {"name": "noisy-cifar100", "class_order": [1, 2], "max_per_class_test": "all"})
    assert cfg.class_order == (1, 2) and cfg.max_per_class_test == "all"
    with pytest.raises(ValueError):
        config.from_dict(StreamConfig, {"nmae": "split-mnist"})


def test_classes_per_experience_alone_must_divide_the_classes(data_root):
    message = "10 classes do not split into experiences of 3; pass num_experiences (--num-experiences) to use 9 of them"
    with pytest.raises(ValueError) as caught:
        make_stream("split-fashionmnist", classes_per_experience=3, root=data_root, verify_checksums=False)
    assert str(caught.value) == message
    subset = make_stream("split-fashionmnist", classes_per_experience=3, num_experiences=3, root=data_root,
                         verify_checksums=False)  # explicit: 9 of 10 classes
    assert [len(e.classes) for e in subset] == [3, 3, 3]
    gtsrb = make_stream("split-gtsrb", root=data_root)  # 8 x 5 of 43 classes, explicit in SPLIT_DEFAULTS
    assert (len(gtsrb), len(gtsrb[0].classes)) == (8, 5)
    ordered = make_stream("split-cifar10", classes_per_experience=3, class_order=[5, 4, 3, 2, 1, 0],
                          root=data_root, verify_checksums=False)  # the 6 classes given split into 2 x 3
    assert [e.classes for e in ordered] == [(5, 4, 3), (2, 1, 0)]
    for bad, match in ((0, "positive"), (11, "exceeds the 10 classes")):
        with pytest.raises(ValueError, match=match):
            make_stream("split-cifar10", classes_per_experience=bad, root=data_root, verify_checksums=False)


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, "0", True])
def test_stream_config_seed_must_fit_in_63_bits(seed):
    with pytest.raises(ValueError, match=r"StreamConfig\.seed must be an integer in 0\.\.2\*\*63-1"):
        StreamConfig(seed=seed)


def test_stream_config_converts_numpy_integers_to_int():
    import numpy as np

    cfg = StreamConfig(name="split-cifar10", seed=np.int64(2**63 - 1), class_order=np.array([3, 1, 2]))
    assert cfg.seed == 2**63 - 1 and type(cfg.seed) is int
    assert cfg.class_order == (3, 1, 2) and all(type(c) is int for c in cfg.class_order)
    assert json.loads(json.dumps(dataclasses.asdict(cfg)))["class_order"] == [3, 1, 2]


@pytest.mark.parametrize("order", [[1.0, 2], ["1", "2"], "12", [True, 2], 5])
def test_stream_config_class_order_must_hold_ints(order):
    with pytest.raises(ValueError, match=r"StreamConfig\.class_order"):
        StreamConfig(name="split-cifar10", class_order=order)
