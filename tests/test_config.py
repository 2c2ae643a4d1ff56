import pytest

from phn.config import ConfigError, HyperConfig, ModelConfig, TrainConfig, from_dict, to_dict


def test_from_dict_builds_typed_frozen_config():
    cfg = from_dict(HyperConfig, {"hidden": [50, 32], "beta": 1})
    assert cfg.hidden == (50, 32) and isinstance(cfg.beta, float)
    with pytest.raises(Exception):
        cfg.beta = 2.0  # frozen


def test_unknown_key_rejected():
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(TrainConfig, {"epoch": 3})


@pytest.mark.parametrize(
    "cls,values",
    [
        (TrainConfig, {"epochs": "3"}),
        (TrainConfig, {"epochs": 2.5}),
        (TrainConfig, {"amp": 1}),
        (HyperConfig, {"lookahead": "third"}),
        (HyperConfig, {"init": "xavier"}),
        (ModelConfig, {"norm": "layer"}),
        (TrainConfig, {"extra_eval_orders": ["random"]}),
        (TrainConfig, {"extra_eval_orders": "sorted"}),
    ],
)
def test_wrong_types_rejected(cls, values):
    with pytest.raises(ConfigError):
        from_dict(cls, values)


@pytest.mark.parametrize("values", [{"freeze_depth": 5}, {"freeze_depth": -1}])
def test_out_of_range_rejected(values):
    with pytest.raises(ConfigError, match="freeze_depth"):
        from_dict(ModelConfig, values)


def test_round_trip():
    cfg = HyperConfig(hidden=(10, 8))
    assert from_dict(HyperConfig, to_dict(cfg)) == cfg


def test_smoke_sized_only_with_env(monkeypatch):
    from phn.config import RunConfig, smoke_sized

    cfg = from_dict(RunConfig, {"stream": {"max_per_class": 1000}, "train": {"epochs": 3}})
    monkeypatch.delenv("PHN_SMOKE", raising=False)
    assert smoke_sized(cfg) == cfg
    monkeypatch.setenv("PHN_SMOKE", "1")
    small = smoke_sized(cfg)
    assert small.stream.max_per_class == 50 and small.train.epochs == 1
    assert small.strategy == cfg.strategy and small.stream.name == cfg.stream.name


def test_with_overrides_replaces_fields_and_rejects_unknown_sections():
    from phn.config import RunConfig
    from phn.experiments import with_overrides

    base = RunConfig()
    cfg = with_overrides(base, {"model": {"freeze_depth": 2}, "strategy": {"name": "lr"}})
    assert cfg.label == "LR-2" and cfg.train == base.train
    assert cfg.digest() != base.digest()
    with pytest.raises(ValueError, match="unknown config section"):
        with_overrides(base, {"modle": {"freeze_depth": 2}})
    with pytest.raises(ConfigError, match="unknown key"):
        with_overrides(base, {"model": {"depth": 2}})


def test_authors_init_is_the_default_and_orders_do_not_repeat():
    assert HyperConfig().init == "pytorch"
    assert from_dict(TrainConfig, {"extra_eval_orders": ["sorted", "index"]}).extra_eval_orders == ("sorted", "index")
    with pytest.raises(ConfigError, match="evaluation orders repeat"):
        from_dict(TrainConfig, {"eval_order": "sorted", "extra_eval_orders": ["sorted"]})


def test_config_table_flattens_sections():
    from phn.config import RunConfig, config_table

    table = config_table(from_dict(RunConfig, {"hyper": {"hidden": [50, 32]}, "model": {"freeze_depth": 2}}))
    values = dict(zip(table.parameter, table.value))
    assert values["hyper.hidden"] == "50, 32" and values["model.freeze_depth"] == "2"
    assert list(table.columns) == ["parameter", "value"]
