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
