"""The sizing study: the convergence rule, its table, and the runs it makes."""

from __future__ import annotations

import pandas as pd
import pytest

from phn.config import ConfigError
from phn.experiments.convergence import (
    ConvergenceConfig, convergence_table, converged, epochs_to_converge, run_convergence, study_row,
)


def test_the_rule_is_within_three_points_of_twice_the_epochs():
    assert converged(80.0, 83.0) and converged(80.0, 77.0) and converged(80.0, 80.0)
    assert not converged(80.0, 83.01) and not converged(80.0, 76.9)
    assert converged(80.0, 84.0, tolerance=4.0) and not converged(80.0, 84.0)


def _study(rows):
    return pd.DataFrame([{"strategy": s, "seed": seed, "epochs": e, "updates_per_experience": 10.0 * e,
                          "learning_accuracy": la} for s, seed, e, la in rows])


def test_table_pairs_each_run_with_its_doubled_run_of_the_same_seed():
    study = _study([("HN-4", 0, 1, 60.0), ("HN-4", 0, 2, 70.0), ("HN-4", 0, 4, 72.0), ("HN-4", 0, 8, 73.0),
                    ("HN-4", 1, 1, 65.0), ("HN-4", 1, 2, 66.0), ("HN-4", 1, 4, 80.0),
                    ("LR-4", 0, 1, 90.0), ("LR-4", 0, 2, 91.0)])
    table = convergence_table(study).set_index(["strategy", "seed", "epochs"])
    assert len(table) == 6  # the longest run of each ladder has no doubled run
    assert table.loc[("HN-4", 0, 1), "gain"] == pytest.approx(10.0) and not table.loc[("HN-4", 0, 1), "converged"]
    assert table.loc[("HN-4", 0, 2), "converged"] and table.loc[("HN-4", 0, 4), "converged"]
    assert table.loc[("HN-4", 1, 1), "converged"] and not table.loc[("HN-4", 1, 2), "converged"]
    first = epochs_to_converge(convergence_table(study)).set_index("strategy")
    # every seed must have converged: seed 0 at 2 epochs, seed 1 not at 2 (66 -> 80), both at 4 (seed 1 unchecked there)
    assert first.loc["HN-4", "epochs"] == 4 and first.loc["HN-4", "checked_up_to"] == 4
    assert first.loc["LR-4", "epochs"] == 1 and first.loc["LR-4", "updates_per_experience"] == 10.0


def test_a_strategy_that_never_converges_has_no_epochs():
    study = _study([("HN-3", 0, 1, 40.0), ("HN-3", 0, 2, 50.0), ("HN-3", 0, 4, 60.0)])
    first = epochs_to_converge(convergence_table(study)).set_index("strategy")
    assert pd.isna(first.loc["HN-3", "epochs"]) and first.loc["HN-3", "checked_up_to"] == 2


def test_runs_are_the_benchmarks_with_other_epochs_and_no_curves():
    cfg = ConvergenceConfig(strategies=("LR-3", "HN-4"), seeds=(100,), epochs_ladder=(2, 1))
    run = cfg.run_config("LR-3", 100, 2)
    bench = cfg.benchmark(cfg.strategies).run_config("LR-3", 100)
    assert run.train.epochs == 2 and run.train.eval_every == 0 and bench.train.eval_every == cfg.eval_every
    assert run.stream == bench.stream and run.strategy == bench.strategy and run.model == bench.model
    assert cfg.jobs() == [("LR-3", 100, 1), ("HN-4", 100, 1), ("LR-3", 100, 2), ("HN-4", 100, 2)]
    with pytest.raises(ConfigError, match="epochs_ladder"):
        ConvergenceConfig(epochs_ladder=())


def test_a_tiny_study_runs_and_survives_as_a_table(tmp_path):
    cfg = ConvergenceConfig(strategies=("Naive", "HN-4"), seeds=(100,), epochs_ladder=(1, 2), max_per_class=8,
                            max_per_class_test=8, batch_size=8)
    study = run_convergence(cfg, out=tmp_path / "out", root=tmp_path / "runs", progress=False)
    assert list(study.columns[:5]) == ["strategy", "seed", "epochs", "updates_per_experience", "learning_accuracy"]
    assert len(study) == 4 and set(study.epochs) == {1, 2}
    # 2 classes x 8 images per experience, batch 8: 2 updates per epoch
    assert list(study.updates_per_experience) == [2.0, 2.0, 4.0, 4.0]
    assert study.filter(like="la_e").shape[1] == 5
    saved = pd.read_csv(tmp_path / "out" / "convergence.csv")
    assert saved.shape == study.shape
    again = run_convergence(cfg, root=tmp_path / "runs", progress=False)  # from the results cache
    pd.testing.assert_frame_equal(again.drop(columns="train_time_s"), study.drop(columns="train_time_s"))
    assert len(convergence_table(study)) == 2


def test_study_row_reads_the_runs_matrix():
    import numpy as np

    from phn.results import Results

    acc = np.array([[0.9, np.nan], [0.8, 0.7]])
    steps = pd.DataFrame({"experience": [0, 0, 0, 1, 1, 1]})
    res = Results(acc, np.array([1.0, 2.0]), np.zeros(2), np.zeros(2), steps=steps)
    row = study_row("HN-4", 3, 2, res)
    assert row["updates_per_experience"] == 3.0 and row["learning_accuracy"] == pytest.approx(80.0)
    assert row["la_e1"] == pytest.approx(90.0) and row["la_e2"] == pytest.approx(70.0) and row["train_time_s"] == 3.0


def test_reusing_other_codes_results_is_in_process_only(tmp_path):
    from phn.sweep import SweepError, run_configs

    cfg = ConvergenceConfig(strategies=("HN-4",), seeds=(100,), epochs_ladder=(1,)).run_config("HN-4", 100, 1)
    with pytest.raises(SweepError, match="only supported in process"):
        run_configs([cfg], tmp_path, sweep_dir=tmp_path / "sweep", reuse_other_code=True)


def _sizes(epochs, **kw):
    from phn.experiments.benchmarks import StreamSizes
    return StreamSizes(epochs=epochs, max_per_class=500, batch_size=32, **kw)


STUDY_SIZES = {"stream": "split-fashionmnist", "max_per_class": 500, "batch_size": 32, "lr": 1e-3,
               "max_per_class_test": "all"}


def test_profile_check_uses_the_doubled_run_or_else_the_last_doubling_per_seed():
    from phn.experiments.convergence import profile_check
    study = _study([("HN-2", 100, 4, 80.0), ("HN-2", 100, 8, 90.0), ("HN-2", 100, 16, 92.0),  # 8 -> 16: +2
                    ("HN-2", 101, 4, 85.0), ("HN-2", 101, 8, 89.0),  # only 4 -> 8 (+4: undecided at 8)
                    ("LR-2", 100, 4, 95.0), ("LR-2", 100, 8, 96.0),  # 4 -> 8: +1
                    ("HN-3", 100, 1, 50.0), ("HN-3", 100, 2, 60.0)])  # no pair reaching 8 epochs
    check = profile_check(convergence_table(study), study, _sizes(8), chance=50.0, study_sizes=STUDY_SIZES)
    check = check.set_index("strategy")
    hn = check.loc["HN-2"]
    assert hn.pairs == "8 → 16, 4 → 8" and hn.seeds == "100, 101" and hn.converged is None
    assert hn.status == "undecided"  # seed 101 may or may not have converged at 8 epochs
    assert hn.learning_accuracy == pytest.approx((90.0 + 89.0) / 2) and hn.gain == pytest.approx((2.0 + 4.0) / 2)
    assert check.loc["LR-2", "status"] == "converged" and check.loc["LR-2", "learning_accuracy"] == pytest.approx(96.0)
    assert check.loc["HN-3", "status"] == "not checked"
    # one seed alone converges at 8 epochs; at 16 epochs only the last doubling is known
    one = study[~((study.strategy == "HN-2") & (study.seed == 101))]
    alone = profile_check(convergence_table(one), one, _sizes(8), 50.0, STUDY_SIZES).set_index("strategy")
    assert alone.loc["HN-2", "status"] == "converged"
    longer = profile_check(convergence_table(one), one, _sizes(16), 50.0, STUDY_SIZES).set_index("strategy")
    assert longer.loc["HN-2", "pairs"] == "8 → 16" and longer.loc["HN-2", "learning_accuracy"] == pytest.approx(92.0)
    # a pair (E, 2E) decides both ways
    against = _study([("HN-2", 100, 8, 80.0), ("HN-2", 100, 16, 90.0), ("HN-2", 101, 4, 85.0), ("HN-2", 101, 8, 86.0)])
    rows = profile_check(convergence_table(against), against, _sizes(8), 50.0, STUDY_SIZES)
    assert rows.status.item() == "not converged at this profile" and rows.converged.item() is False


def test_profile_check_needs_the_studys_training_sizes_and_a_clear_margin_above_chance():
    from phn.experiments.convergence import profile_check
    study = _study([("HN-4", 100, 8, 69.0), ("HN-4", 100, 16, 70.0)])
    table = convergence_table(study)
    assert profile_check(table, study, _sizes(8), 50.0, STUDY_SIZES).status.item() == "not clearly above chance"
    assert profile_check(table, study, _sizes(8), 45.0, STUDY_SIZES).status.item() == "converged"
    # other test-set sizes still count (they sample the accuracy, they do not change training) ...
    assert profile_check(table, study, _sizes(8, max_per_class_test=600), 45.0, STUDY_SIZES).status.item() == "converged"
    # ... other training sizes do not, in any of the studies given
    other = [STUDY_SIZES, {**STUDY_SIZES, "batch_size": 16}]
    assert profile_check(table, study, _sizes(8), 45.0, other).status.item() == "not checked"


def test_studies_load_as_one_with_the_later_folder_winning(tmp_path):
    from phn.experiments.convergence import load_studies
    for name, rows in (("a", [("HN-2", 100, 4, 80.0), ("HN-2", 100, 8, 90.0)]), ("b", [("HN-2", 100, 8, 91.0),
                                                                                        ("HN-2", 100, 16, 92.0)])):
        (tmp_path / name).mkdir()
        _study(rows).to_csv(tmp_path / name / "convergence.csv", index=False)
        (tmp_path / name / "convergence.json").write_text(f'{{"command": "{name}"}}')
    study, metas = load_studies([tmp_path / "a", tmp_path / "b"])
    assert [m["command"] for m in metas] == ["a", "b"] and len(study) == 3
    assert study.set_index("epochs").loc[8, "learning_accuracy"] == 91.0


def test_the_recorded_studies_check_the_cpu_profile():
    """The committed studies were run at the cpu profile's training sizes: every strategy of the
    benchmark chapter is checked there (none "not checked")."""
    from phn.experiments.benchmarks import BenchmarkConfig
    from phn.experiments.convergence import recorded_check
    from phn.profiles import PROFILES

    sizes = BenchmarkConfig(**PROFILES["cpu"].values("benchmarks"))
    check = recorded_check(sizes, sizes.chance)
    rows = check.table.set_index("strategy")
    assert set(sizes.strategies) <= set(rows.index) and len(check.commands) == 5
    assert (rows.loc[list(sizes.strategies), "status"] != "not checked").all()
    assert set(check.converged) >= set(sizes.strategies)


def test_a_chapters_own_check_compares_its_runs_with_half_length_runs_of_one_seed():
    from phn.experiments.convergence import half_length, half_length_check
    long = pd.DataFrame([{"model": m, "seed": seed, "learning_accuracy": la} for m, seed, la in [
        ("HN-2", 0, 90.0), ("HN-2", 1, 92.0), ("LR-2", 0, 95.0), ("LR-2", 1, 97.0), ("HN-4", 0, 60.0), ("HN-4", 1, 62.0)]])
    short = pd.DataFrame([{"model": m, "seed": 0, "learning_accuracy": la} for m, la in [
        ("HN-2", 86.0), ("LR-2", 94.0), ("HN-4", 59.0)]])
    check = half_length_check(long, short, ["model"], chance=50.0).set_index("model")
    # 4 points gained from E/2 to E: E/2 was not on the plateau; whether E is, only 2E could tell
    assert check.loc["HN-2", "status"] == "undecided" and check.loc["HN-2", "gain"] == 4.0
    assert check.loc["HN-2", "converged"] is None and check.loc["LR-2", "converged"] is True
    assert check.loc["LR-2", "status"] == "converged" and check.loc["LR-2", "learning_accuracy"] == 96.0
    assert check.loc["HN-4", "status"] == "not clearly above chance" and check.loc["HN-4", "seeds"] == "0"
    unchecked = half_length_check(long, short.iloc[:0], ["model"], chance=50.0)
    assert set(unchecked.status) == {"not checked"}
    assert half_length(8) == 4 and half_length(1) == 1


def test_a_study_not_recorded_yet_adds_no_runs_and_says_so(tmp_path):
    from phn.experiments.convergence import load_studies
    (tmp_path / "a").mkdir()
    _study([("HN-2", 100, 4, 80.0)]).to_csv(tmp_path / "a" / "convergence.csv", index=False)
    study, metas = load_studies([tmp_path / "a", tmp_path / "later"])
    assert len(study) == 1 and metas[1]["command"] == "(not recorded yet: later)"


def test_the_chapter_gate_gives_judge_its_converged_and_below_chance_strategies():
    """The freeze and noise chapters' gate: converged per strategy over every checked group; below chance
    per group of ``clear_by`` (the freeze chapter: a strategy's mean over its whole grid)."""
    from phn.experiments.convergence import chapter_gate
    rows = [("HN", "a", 0, 90.0), ("HN", "a", 1, 92.0), ("HN", "b", 0, 88.0), ("HN", "b", 1, 88.0),
            ("LR", "a", 0, 95.0), ("LR", "a", 1, 95.0), ("LR", "b", 0, 30.0), ("LR", "b", 1, 32.0)]
    long = pd.DataFrame([{"model": m, "pair": p, "seed": s, "learning_accuracy": la} for m, p, s, la in rows])
    short = pd.DataFrame([{"model": m, "pair": p, "seed": 0, "learning_accuracy": la}
                          for m, p, la in [("HN", "a", 89.0), ("HN", "b", 84.0), ("LR", "a", 94.0), ("LR", "b", 30.0)]])
    gate = chapter_gate(long, short, ["model", "pair"], "model", chance=20.0)
    # HN gained 4 points on pair b: not converged; LR's pair b is below 20 + 20 points
    assert gate.converged == {"HN": False, "LR": True} and gate.below_chance == ["LR"]
    by_grid = chapter_gate(long, short, ["model", "pair"], "model", chance=20.0, clear_by=["model"])
    assert by_grid.below_chance == []  # LR's mean over both pairs is 63, clearly above 40
    assert chapter_gate(long, None, ["model", "pair"], "model", chance=20.0).converged is None
    assert set(gate.check.columns) >= {"model", "pair", "gain", "status"}
