"""Profiles: one switch for every chapter's sizes, overrides listed, the paper's setting defined once."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from phn import profiles
from phn.config import ConfigError
from phn.data import DatasetNotFoundError
from phn.experiments.ablations import AblationConfig
from phn.experiments.benchmarks import BenchmarkConfig
from phn.experiments.cosine import CosineConfig
from phn.experiments.freeze import FreezeConfig
from phn.experiments.noise import NoiseConfig
from phn.profiles import PROFILE_NAMES, configure, describe, differences, resolve

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SECTIONS = (BenchmarkConfig, AblationConfig, CosineConfig, FreezeConfig, NoiseConfig)


@pytest.fixture
def no_smoke(monkeypatch):
    monkeypatch.delenv("PHN_SMOKE", raising=False)


def test_a_typo_is_one_line_naming_the_valid_profiles(no_smoke):
    with pytest.raises(ConfigError) as err:
        resolve("cpuu")
    assert str(err.value) == "unknown profile 'cpuu'; valid profiles: smoke, cpu, gpu, paper"
    with pytest.raises(ConfigError, match="valid profiles: smoke, cpu, gpu, paper"):
        BenchmarkConfig(profile="gpuu")


def test_phn_smoke_selects_the_smoke_profile(monkeypatch):
    monkeypatch.setenv("PHN_SMOKE", "1")
    assert resolve("cpu").name == "smoke" and configure(BenchmarkConfig, "paper", require_data=False).profile == "smoke"
    monkeypatch.setenv("PHN_SMOKE", "0")
    assert resolve("cpu").name == "cpu"


@pytest.mark.parametrize("cls", SECTIONS)
@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_every_profile_builds_every_chapter_with_nothing_overridden(no_smoke, cls, name):
    cfg = configure(cls, name, require_data=False)
    assert cfg.profile == name and cfg.overridden == () and differences(cfg).empty
    assert describe(cfg) == f"profile {name}"
    assert cfg.paper_setting == (name == "paper")


def test_an_override_replaces_one_value_and_is_listed(no_smoke):
    cfg = configure(BenchmarkConfig, "cpu", {"epochs": 99, "seeds": [7], "max_per_class": "all", "batch_size": None})
    base = configure(BenchmarkConfig, "cpu")
    assert cfg.epochs == 99 and cfg.seeds == (7,) and cfg.max_per_class is None and cfg.batch_size == base.batch_size
    assert cfg.overridden == ("epochs", "max_per_class", "seeds")
    table = differences(cfg).set_index("parameter")
    assert table.loc["epochs", "profile"] == str(base.epochs) and table.loc["epochs", "this run"] == "99"
    assert describe(cfg).startswith("profile cpu; epochs=99 (profile: ")
    # a value equal to the profile's is no difference
    assert configure(BenchmarkConfig, "cpu", {"epochs": base.epochs}).overridden == ()
    with pytest.raises(ConfigError, match="unknown parameter"):
        configure(BenchmarkConfig, "cpu", {"epochz": 3})
    with pytest.raises(ConfigError, match="BenchmarkConfig.epochs"):
        configure(BenchmarkConfig, "cpu", {"epochs": "abc"})


def test_the_papers_setting_is_the_paper_profile_with_nothing_it_fixes_overridden(no_smoke):
    paper = configure(BenchmarkConfig, "paper", require_data=False)
    assert paper.paper_setting and paper.stream == "split-cifar100" and paper.epochs == 100
    assert paper.batch_size == 64 and paper.lr == 1e-3 and paper.buffer_size == 200 and paper.max_per_class is None
    # the reader's choices keep it; a forgotten or changed size does not
    assert configure(BenchmarkConfig, "paper", {"seeds": [0, 1, 2, 3]}, require_data=False).paper_setting
    assert not configure(BenchmarkConfig, "paper", {"buffer_size": 20}, require_data=False).paper_setting
    assert not configure(BenchmarkConfig, "paper", {"epochs": 10}, require_data=False).paper_setting
    # the paper's sizes typed in by hand under another profile are not "the paper's setting"
    assert not configure(BenchmarkConfig, "cpu", dataclasses.asdict(paper) | {"profile": None, "overridden": None},
                         require_data=False).paper_setting


def test_chapters_that_share_runs_share_them_by_construction(no_smoke):
    for name in PROFILE_NAMES:
        bench = configure(BenchmarkConfig, name, require_data=False)
        for cls in (AblationConfig, CosineConfig):
            other = configure(cls, name, require_data=False).benchmark(bench.strategies)
            assert other.run_config("HN-4", bench.seeds[0]) == bench.run_config("HN-4", bench.seeds[0]), (name, cls)


def test_the_paper_profile_without_cifar_stops_with_the_data_error(no_smoke, tmp_path, monkeypatch):
    monkeypatch.setenv("PHN_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as err:
        configure(BenchmarkConfig, "paper")
    message = str(err.value)
    assert "cifar-100-python/train" in message and "How to obtain" in message
    with pytest.raises(DatasetNotFoundError, match="How to obtain"):
        configure(FreezeConfig, "paper")


def test_smoke_profile_is_tiny_for_the_test_suite(monkeypatch):
    """Every chapter at profile smoke (what ``PHN_SMOKE=1`` selects): one seed, at most 20 training
    images per class, one epoch; the cpu profile is larger in each."""
    monkeypatch.setenv("PHN_SMOKE", "1")
    for cls in SECTIONS:
        cfg = configure(cls, "cpu")
        assert cfg.profile == "smoke" and len(cfg.seeds) == 1 and cfg.epochs == 1, cls
        assert cfg.max_per_class is not None and cfg.max_per_class <= 20, cls
    monkeypatch.setenv("PHN_SMOKE", "0")
    for cls in SECTIONS:
        cfg = configure(cls, "cpu", require_data=False)
        assert len(cfg.seeds) == 3 and cfg.epochs > 1 and cfg.max_per_class > 20, cls


def test_every_section_notebook_takes_the_profile():
    from phn.notebooks import notebook_parameters

    for name in ("quickstart", "freeze", "noise", "benchmarks", "ablations", "cosine"):
        params = notebook_parameters(NOTEBOOKS / f"{name}.ipynb")
        assert "profile" in params, name
    makefile = (NOTEBOOKS.parent / "Makefile").read_text()
    assert "PROFILE ?= cpu" in makefile and "-p profile $(PROFILE)" in makefile
    nb = json.loads((NOTEBOOKS / "benchmarks.ipynb").read_text())
    assert "configure(BenchmarkConfig, profile" in "".join("".join(c["source"]) for c in nb["cells"])


def test_profile_table_lists_every_profile():
    table = profiles.profile_table()
    assert list(table.profile) == list(PROFILE_NAMES) and "epochs" in table.columns


@pytest.mark.parametrize("cls", [BenchmarkConfig, FreezeConfig, NoiseConfig])
@pytest.mark.parametrize("bad", [0, -5, True, "some", 2.5])
def test_a_bad_test_set_size_is_one_line_naming_the_config(cls, bad):
    with pytest.raises(ConfigError, match=rf"^{cls.__name__}\.max_per_class_test must be a positive integer, 'all' or "
                                          rf"None, got {re.escape(repr(bad))}$"):
        cls(max_per_class_test=bad)


@pytest.mark.parametrize("cls", [BenchmarkConfig, FreezeConfig, NoiseConfig])
@pytest.mark.parametrize("good", [None, "all", 600])
def test_a_test_set_size_may_be_a_count_all_or_none(cls, good):
    assert cls(max_per_class_test=good).max_per_class_test == good
