"""Section 4.3 experiment: strategy labels, Table 2 aggregation, Table 6 from built objects, Figure 8's
curves and the ledger's verdicts."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from phn.config import ConfigError, from_dict
from phn.experiments.benchmarks import (
    BenchmarkConfig, benchmark_findings, benchmark_summary, benchmark_table, experience_curves, memory_table,
    paper_memory_check, run_benchmarks, stability, strategy_sections,
)

FASHION = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def test_labels_map_to_configs():
    assert strategy_sections("Naive") == {"strategy": {"name": "naive"}}
    assert strategy_sections("HN-F")["model"] == {"freeze_depth": 0}
    assert strategy_sections("LR-2", 300) == {"strategy": {"name": "lr", "replay_coef": 1.0, "buffer_size": 300},
                                              "model": {"freeze_depth": 2}}
    assert strategy_sections("LR-3", 300, replay_coef=0.0)["strategy"]["buffer_size"] == 0  # c = 0 keeps no buffer
    for bad in ("HN-0", "LR-5", "hn-4", "ER"):
        with pytest.raises(ConfigError, match="unknown strategy label"):
            strategy_sections(bad)


@pytest.mark.parametrize("values,message", [
    ({"stream": "noisy-fashionmnist"}, "split stream"), ({"strategies": ["HN-9"]}, "HN-9"),
    ({"curve_depth": 0}, "curve_depth"), ({"epochs": 0}, "epochs"), ({"seeds": []}, "must not be empty"),
])
def test_bad_parameters_are_named(values, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(BenchmarkConfig, values)


def test_only_the_figure8_runs_record_curves():
    cfg = BenchmarkConfig(curve_depth=3, eval_every=7)
    assert cfg.run_config("LR-3", 1).train.eval_every == 7 and cfg.run_config("HN-3", 1).train.eval_every == 7
    assert cfg.run_config("HN-4", 1).train.eval_every == 0 and cfg.run_config("Naive", 1).train.eval_every == 0
    run = cfg.run_config("LR-2", 1)
    assert (run.stream.name, run.stream.seed, run.train.seed, run.strategy.buffer_size) == ("split-fashionmnist", 1, 1, cfg.buffer_size)
    # "the paper's setting" is profile paper with nothing overridden that the paper fixes (phn.profiles);
    # the paper's sizes under another profile are not it
    assert not cfg.paper_setting and not BenchmarkConfig("split-cifar100", max_per_class=None, epochs=100).paper_setting
    assert BenchmarkConfig("split-cifar100", max_per_class=None, epochs=100, profile="paper").paper_setting
    assert not BenchmarkConfig("split-cifar100", max_per_class=None, epochs=100, profile="paper",
                               overridden=("buffer_size",)).paper_setting


def test_table6_from_built_objects_matches_the_paper():
    cifar = memory_table(num_classes=100, num_tasks=20, buffer_size=200, input_hw=32)
    assert list(cifar["exemplar shape"]) == ["3 x 32 x 32", "20 x 32 x 32", "40 x 16 x 16", "80 x 8 x 8", "160 x 4 x 4"]
    assert cifar.loc[4, "HN parameters"] == 533_922 and cifar.loc[0, "buffer floats"] == 200 * 3 * 32 * 32
    tiny = memory_table(num_classes=100, num_tasks=20, buffer_size=400, input_hw=64)
    check = paper_memory_check(cifar, tiny)
    assert len(check) == 30 and check.equal.all()
    wrong = cifar.assign(**{"HN parameters": cifar["HN parameters"] + 1})
    assert not paper_memory_check(wrong, tiny).equal.all()  # the check can fail
    # ten outputs: the classifier head shrinks (Table 6 counts 100 outputs)
    assert memory_table(num_classes=10).loc[4, "HN parameters"] == 56_922


def _runs(values):
    return pd.DataFrame([{"strategy": s, "seed": seed, "aca": aca, "learning_accuracy": aca + f, "forgetting": f,
                          "train_time_s": t} for s, seed, aca, f, t in values])


def test_summary_and_table():
    runs = _runs([("LR-2", 0, 60, 30, 10), ("LR-2", 1, 70, 20, 12), ("HN-2", 0, 80, 2, 20), ("HN-2", 1, 80, 4, 22)])
    summary = benchmark_summary(runs).set_index("strategy")
    assert summary.loc["LR-2", "aca"] == 65 and summary.loc["LR-2", "aca_std"] == pytest.approx(np.std([60, 70], ddof=1))
    assert summary.loc["HN-2", "seeds"] == 2
    table = benchmark_table(benchmark_summary(runs), "split-fashionmnist")
    assert "paper ACA" not in table and table.iloc[0]["ACA (%)"] == "65.0 ± 7.1"
    paper = benchmark_table(benchmark_summary(runs), "split-cifar100").set_index("strategy")
    assert paper.loc["HN-2", "paper ACA"] == "62.8 ± 1.6" and paper.loc["LR-2", "paper forgetting"] == "40.3 ± 1.1"


def test_findings():
    cfg = BenchmarkConfig(curve_depth=2)
    runs = _runs([("Naive", 0, 50, 40, 5), ("LR-2", 0, 60, 30, 10), ("HN-2", 0, 80, 2, 20), ("HN-F", 0, 81, 1, 50)])
    stable = pd.DataFrame({"model": ["LR-2 (c = 1)", "HN-2"], "learning_accuracy": [95.0, 85.0], "forgetting": [20.0, 2.0]})
    found = {f.claim: f for f in benchmark_findings(cfg, benchmark_summary(runs), stable, None, "cfg")}
    assert found["method-forgetting"].verdict == "holds qualitatively"
    assert found["table2-hn-beats-lr"].verdict == "holds qualitatively" and "HN-2 80.0 vs LR-2 60.0" in found[
        "table2-hn-beats-lr"].ours
    assert found["table2-hn2-near-hnf"].verdict == "holds qualitatively"  # 1 point below, 0.4x the time
    assert found["figure8-stability"].verdict == "holds qualitatively"
    worse = _runs([("LR-2", 0, 80, 3, 10), ("HN-2", 0, 60, 5, 20)])
    found = {f.claim: f for f in benchmark_findings(cfg, benchmark_summary(worse), None, None, "cfg")}
    assert found["method-forgetting"].verdict == "does not hold at this scale"
    assert found["table2-hn-beats-lr"].verdict == "does not hold at this scale"
    paper = BenchmarkConfig("split-cifar100", max_per_class=None, epochs=100, curve_depth=2, profile="paper")
    assert benchmark_findings(paper, benchmark_summary(runs), None, None, "cfg")[0].verdict == "holds"


@pytest.mark.skipif(not os.path.exists(FASHION), reason="needs apt-get install dataset-fashion-mnist")
def test_tiny_grid_on_real_data(tmp_path):
    cfg = BenchmarkConfig(strategies=("Naive", "HN-4"), seeds=(0,), max_per_class=8, epochs=1, curve_depth=4,
                          eval_every=1)
    runs = run_benchmarks(cfg, root=tmp_path, progress=False)
    assert list(runs.runs.strategy) == ["Naive", "HN-4"] and set(runs.results) == {("Naive", 0), ("HN-4", 0)}
    assert set(runs.curves) == {("LR-4 (c = 0)", 0), ("LR-4 (c = 1)", 0), ("HN-4", 0)}
    assert runs.runs.parameters.gt(0).all()
    curves = experience_curves(runs.curves)
    assert set(curves.experience) == {1, 2, 3} and curves.accuracy.between(0, 100).all()
    assert set(stability(runs.curves).model) == {"LR-4 (c = 0)", "LR-4 (c = 1)", "HN-4"}
    assert len(list(tmp_path.iterdir())) == 4  # LR-4 c = 0 and c = 1 are different runs; HN-4 is shared
