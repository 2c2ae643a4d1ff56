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


def _three_seeds(rows):
    """Hand-made runs on seeds 0-2: (strategy, aca per seed, forgetting per seed, time)."""
    return _runs([(s, seed, aca[seed], forg[seed], t) for s, aca, forg, t in rows for seed in range(3)])


def _stable(rows):
    return pd.DataFrame([{"model": m, "seed": seed, "learning_accuracy": la[seed], "forgetting": f[seed]}
                         for m, la, f in rows for seed in range(3)])


def test_findings_follow_the_ledgers_rule():
    """Seed-paired 95 % intervals (t, 2 degrees of freedom: half-width 4.30 sd / sqrt(3)), depth by depth."""
    cfg = BenchmarkConfig(curve_depth=2)
    runs = _three_seeds([("Naive", (50, 52, 48), (40, 42, 38), 5), ("LR-2", (60, 62, 58), (30, 31, 29), 10),
                         ("HN-2", (80, 81, 79), (2, 3, 1), 20), ("HN-F", (80.5, 81, 80), (1, 2, 1), 50)])
    stable = _stable([("LR-2 (c = 1)", (95, 96, 94), (20, 22, 18)), ("HN-2", (85, 86, 84), (2, 3, 1))])
    found = {f.claim: f for f in benchmark_findings(cfg, runs, stable, None, "cfg")}
    assert found["method-forgetting"].verdict == "holds qualitatively"  # LR-2 > HN-2 and Naive > HN-F, decisively
    assert found["table2-hn-beats-lr"].verdict == "holds qualitatively"
    assert "aca HN-2 - LR-2 +20.0 [" in found["table2-hn-beats-lr"].ours
    # HN-2 - HN-F = -0.5, -0, -1: interval about [-1.7, 0.7], inside +-2: equivalent; HN-F slower on every seed
    assert found["table2-hn2-near-hnf"].verdict == "holds qualitatively"
    assert found["figure8-stability"].verdict == "holds qualitatively"

    reversed_ = _three_seeds([("LR-2", (80, 81, 79), (3, 4, 2), 10), ("HN-2", (60, 62, 58), (10, 12, 8), 20)])
    found = {f.claim: f for f in benchmark_findings(cfg, reversed_, None, None, "cfg")}
    assert found["method-forgetting"].verdict == "does not hold at this scale"
    assert found["table2-hn-beats-lr"].verdict == "does not hold at this scale"

    # noisy seeds: the interval straddles zero, so the rule calls it inconclusive whatever the means say
    noisy = _three_seeds([("LR-2", (60, 80, 70), (10, 30, 20), 10), ("HN-2", (75, 65, 80), (15, 20, 10), 20)])
    found = {f.claim: f for f in benchmark_findings(cfg, noisy, None, None, "cfg")}
    assert found["table2-hn-beats-lr"].verdict == "inconclusive" and found["method-forgetting"].verdict == "inconclusive"
    # one seed never decides
    one = runs[runs.seed == 0]
    assert {f.verdict for f in benchmark_findings(cfg, one, None, None, "cfg")} == {"inconclusive"}

    paper = BenchmarkConfig("split-cifar100", max_per_class=None, epochs=100, curve_depth=2, profile="paper")
    assert benchmark_findings(paper, runs, None, None, "cfg")[0].verdict == "holds"


def test_claims_on_strategies_not_converged_or_not_learned_are_not_judged():
    cfg = BenchmarkConfig(curve_depth=2)
    runs = _three_seeds([("LR-2", (60, 62, 58), (30, 31, 29), 10), ("HN-2", (80, 81, 79), (2, 3, 1), 20)])
    found = {f.claim: f for f in benchmark_findings(cfg, runs, None, None, "cfg", converged={"HN-2": False, "LR-2": True})}
    assert found["method-forgetting"].verdict == "inconclusive"
    assert "not judged: HN-2 not shown to converge at this profile" in found["method-forgetting"].ours
    found = {f.claim: f for f in benchmark_findings(cfg, runs, None, None, "cfg", converged={"HN-2": True, "LR-2": True})}
    assert found["method-forgetting"].verdict == "holds qualitatively"
    # learning accuracy = aca + forgetting: LR-2 about 91, HN-2 about 82; chance 50 -> both clear; chance 70 -> HN-2 not
    assert benchmark_findings(cfg, runs, None, None, "cfg", chance=50.0)[0].verdict == "holds qualitatively"
    low = benchmark_findings(cfg, runs, None, None, "cfg", chance=70.0)[0]
    assert low.verdict == "inconclusive" and "HN-2 not clearly above chance" in low.ours
    assert BenchmarkConfig().chance == 50.0 and BenchmarkConfig("split-cifar100").chance == 20.0


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


def test_figure8s_lr_without_replay_is_trained_only_when_asked(monkeypatch):
    """``curve_without_replay=False`` (profile cpu) leaves out LR-k with c = 0; Table 2's runs are unchanged."""
    import phn.sweep
    from phn.sweep import trial_id

    class Done:
        def summary(self):
            return {"aca": 0.0}

    asked = []

    def fake_run_configs(configs, root, **options):
        asked.append([(c.strategy.name, c.strategy.replay_coef, c.model.freeze_depth) for c in configs])
        return {trial_id(c): Done() for c in configs}, None

    monkeypatch.setattr(phn.sweep, "run_configs", fake_run_configs)
    for without in (True, False):
        runs = run_benchmarks(BenchmarkConfig(strategies=("Naive", "LR-3", "HN-3"), seeds=(0, 1),
                                              curve_without_replay=without))
        assert list(runs.runs.strategy) == ["Naive", "LR-3", "HN-3"] * 2
        assert (("LR-3 (c = 0)", 0) in runs.curves) is without and ("LR-3 (c = 1)", 1) in runs.curves
    assert [("lr", 0.0, 3)] * 2 == [job for job in asked[0] if job[1] == 0.0]
    assert not [job for job in asked[1] if job[1] == 0.0] and len(asked[1]) == 6


def test_figure8_runs_are_trained_only_when_asked(monkeypatch):
    """``figure8=False`` (profile cpu) trains Table 2's runs only: no LR-k / HN-k at curve_depth beyond
    the strategies, no curves in any run, no Figure 8 results; with it, LR-3 and HN-3 train besides."""
    import phn.sweep
    from phn.sweep import trial_id

    class Done:
        def summary(self):
            return {"aca": 0.0}

    asked = []

    def fake_run_configs(configs, root, **options):
        asked.append([(c.label, c.strategy.replay_coef, c.train.eval_every) for c in configs])
        return {trial_id(c): Done() for c in configs}, None

    monkeypatch.setattr(phn.sweep, "run_configs", fake_run_configs)
    off = run_benchmarks(BenchmarkConfig(strategies=("Naive", "LR-3", "HN-4"), seeds=(0,), figure8=False,
                                         eval_every=7))
    assert asked[0] == [("Naive", 1.0, 0), ("LR-3", 1.0, 0), ("HN-4", 1.0, 0)] and off.curves == {}
    on = run_benchmarks(BenchmarkConfig(strategies=("Naive", "LR-3", "HN-4"), seeds=(0,), eval_every=7))
    assert asked[1] == [("Naive", 1.0, 0), ("LR-3", 1.0, 7), ("HN-4", 1.0, 0), ("LR-3", 0.0, 7), ("HN-3", 1.0, 7)]
    assert set(on.curves) == {("LR-3 (c = 1)", 0), ("LR-3 (c = 0)", 0), ("HN-3", 0)}
    assert list(off.runs.strategy) == list(on.runs.strategy) == ["Naive", "LR-3", "HN-4"]


def test_claims_the_grid_leaves_out_are_not_measured_with_the_reason():
    from phn.experiments.benchmarks import benchmark_not_measured
    from phn.ledger import Finding

    cfg = BenchmarkConfig(strategies=("Naive", "LR-4", "HN-4", "HN-F"), figure8=False, profile="cpu")
    made = [Finding("method-forgetting", "x", "inconclusive", "cfg"), Finding("table2-hn-beats-lr", "x", "inconclusive", "cfg")]
    why = benchmark_not_measured(cfg, made)
    assert set(why) == {"table2-hn2-near-hnf", "figure8-stability"}
    assert "HN-2 and HN-F (the grid lacks HN-2)" in why["table2-hn2-near-hnf"]
    assert why["figure8-stability"].startswith("at profile cpu its grid leaves out Figure 8's runs")
    assert "-p figure8 True" in why["figure8-stability"]
    assert benchmark_not_measured(cfg, made + [Finding("table2-hn2-near-hnf", "x", "inconclusive", "cfg"),
                                               Finding("figure8-stability", "x", "inconclusive", "cfg")]) == {}
