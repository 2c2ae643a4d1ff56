"""benchmarks/per_seed.py: the per-seed tables the recorded ledgers quote, computed from finished runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks import per_seed
from phn.config import RunConfig, from_dict, to_dict
from phn.results import Results


def _run(runs: Path, name: str, strategy: str, depth: int, seed: int, epochs: int, acc: list[list[float]]) -> None:
    cfg = from_dict(RunConfig, {"stream": {"name": "split-fashionmnist", "seed": seed},
                                "strategy": {"name": strategy}, "model": {"freeze_depth": depth},
                                "train": {"seed": seed, "epochs": epochs}})
    n = len(acc)
    Results(np.array(acc, dtype=float), np.ones(n), np.zeros(n), np.zeros(n),
            config={**to_dict(cfg), "versions": {"phn": "test"}}).save(runs / name)


def test_runs_are_tabled_per_label_and_seed_and_grouped_by_the_settings_that_differ(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    # learning accuracy 90, ACA (80+70)/2 = 75, forgetting 90-80 = 10
    _run(runs, "naive-3", "naive", 0, 3, 8, [[0.9, np.nan], [0.8, 0.7]])
    _run(runs, "naive-4", "naive", 0, 4, 8, [[1.0, np.nan], [1.0, 1.0]])
    _run(runs, "hn4-3", "hn", 4, 3, 8, [[0.6, np.nan], [0.6, 0.8]])
    _run(runs, "hnf-3", "hn", 0, 3, 8, [[0.5, np.nan], [0.5, 0.5]])
    _run(runs, "naive-3-16", "naive", 0, 3, 16, [[0.5, np.nan], [0.5, 0.5]])
    (runs / "cut-off").mkdir()  # a run without complete.json is skipped
    (runs / "cut-off" / "config.json").write_text("{}")

    tables = per_seed.per_seed_tables(per_seed.run_rows(runs))
    assert [heading for heading, _ in tables] == ["train.epochs=16", "train.epochs=8"]
    eight = tables[1][1]
    assert list(eight.index) == ["Naive", "HN-4", "HN-F"] and list(eight.columns) == ["seed 3", "seed 4"]
    assert eight.loc["Naive", "seed 3"] == "80.0 / 75.0 / 10.0"
    assert eight.loc["Naive", "seed 4"] == "100.0 / 100.0 / 0.0"
    assert eight.loc["HN-4", "seed 3"] == "70.0 / 70.0 / 0.0"

    only = per_seed.per_seed_tables(per_seed.run_rows(runs), {"train.epochs": 8}, seeds=[4])
    assert len(only) == 1 and only[0][0] == "all runs" and list(only[0][1].index) == ["Naive"]
    text = per_seed.main([str(runs), "--where", "train.epochs=8", "--seeds", "3"])
    assert "| HN-4 | 70.0 / 70.0 / 0.0 |" in text and "seed 4" not in text


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        per_seed.parse_where(["epochs"])
    with pytest.raises(SystemExit, match="not a folder"):
        per_seed.main([str(tmp_path / "missing")])
    _run(tmp_path / "runs", "a", "naive", 0, 0, 1, [[1.0]])
    with pytest.raises(SystemExit, match="no setting 'train.epoch'"):
        per_seed.main([str(tmp_path / "runs"), "--where", "train.epoch=8"])
    assert per_seed.main([str(tmp_path / "runs"), "--seeds", "9"]) == "No finished runs match.\n"
