"""Section 4.1 experiment: its typed config, the grid it runs (experience 1 of LR trained once), and
the claims it computes."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from phn.config import ConfigError, from_dict
from phn.experiments.freeze import FreezeConfig, freeze_claims, freeze_summary, freeze_table, run_freeze


@pytest.mark.parametrize("values,message", [
    ({"pairs": ["fashionmnist->imagenet"]}, "pairs"),
    ({"pairs": ["fashionmnist"]}, "pairs"),
    ({"depths": [0, 5]}, "depths"),
    ({"strategies": ["ewc"]}, "strategies"),
    ({"epochs": "abc"}, "epochs"),
    ({"seeds": []}, "must not be empty"),
    ({"freeze_depth": 2}, "unknown key"),
])
def test_bad_parameters_are_named(values, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(FreezeConfig, values)


def test_run_configs():
    cfg = FreezeConfig()
    lr = cfg.run_config("digits->fashionmnist", "lr", 3, 1)
    assert lr.label == "LR-3" and lr.strategy.replay_coef == 0 and lr.stream.name == "cross:digits->fashionmnist"
    assert (lr.stream.seed, lr.train.seed, lr.stream.classes_per_experience, lr.stream.max_per_class) == (1, 1, 5, 50)
    assert cfg.run_config("digits->fashionmnist", "hn", 0, 1).label == "HN-F"


def _summary(drops):
    rows = []
    for pair, strategy, low, high in drops:
        rows += [{"pair": pair, "strategy": strategy, "depth": 0, "mean": low, "std": 1.0, "seeds": 2},
                 {"pair": pair, "strategy": strategy, "depth": 4, "mean": high, "std": 2.0, "seeds": 2}]
    return pd.DataFrame(rows)


def test_claims_and_table():
    summary = _summary([("a->a", "lr", 90, 88), ("a->b", "lr", 80, 60), ("b->a", "lr", 70, 40),
                        ("a->a", "hn", 90, 70), ("a->b", "hn", 80, 79), ("b->a", "hn", 70, 69)])
    claims = freeze_claims(summary).set_index(["pair", "strategy"])
    assert claims.loc[("a->a", "lr")].similar and claims.loc[("a->b", "lr")].accuracy_drop == 20
    table = freeze_table(summary)
    assert list(table.columns) == ["pair", "strategy", "k = 0", "k = 4"] and table.iloc[0]["k = 0"] == "90.0 ± 1.0"


def _runs(rows, noise=(0.0, 1.0, -1.0)):
    """Per-seed runs: (pair, strategy, accuracy at k = 0, at k = 4), on seeds 0, 1, 2 with the k = 4
    accuracy offset by ``noise`` (so the drops vary by seed)."""
    return pd.DataFrame([{"pair": pair, "strategy": strategy, "depth": depth, "seed": seed,
                          "acc_second": low if depth == 0 else high + d}
                         for pair, strategy, low, high in rows for seed, d in enumerate(noise) for depth in (0, 4)])


def test_grid_trains_lr_experience_one_once(tmp_path):
    """A tiny grid on real data (scikit-learn's digits): LR at the second depth continues from the first
    depth's checkpoint after experience 1; HN trains each depth."""
    pytest.importorskip("sklearn")
    cfg = FreezeConfig(pairs=("digits->digits",), depths=(4, 1), seeds=(0,), max_per_class=8, epochs=1)
    runs, results = run_freeze(cfg, root=tmp_path, progress=False)
    assert len(runs) == 4 and set(runs.strategy) == {"lr", "hn"}
    assert runs.acc_second.between(0, 100).all()
    from phn.train import run_dir_for

    configs = {(s, k): json.loads((run_dir_for(cfg.run_config("digits->digits", s, k, 0), tmp_path)
                                   / "config.json").read_text()) for s in ("lr", "hn") for k in (4, 1)}
    assert "start_from" not in configs["lr", 4] and configs["lr", 1]["start_from"]["experience"] == 0
    assert "start_from" not in configs["hn", 1]
    lr = runs[runs.strategy == "lr"].set_index("depth")
    assert lr.loc[4, "acc_first"] == lr.loc[1, "acc_first"]  # the same experience-1 model
    assert freeze_summary(runs).seeds.tolist() == [1, 1, 1, 1]


def test_findings_for_the_ledger():
    from phn.experiments.freeze import freeze_drops, freeze_findings

    both_hold = _runs([("a->a", "lr", 90, 88), ("a->b", "lr", 80, 60), ("b->a", "lr", 70, 40)])
    drops = freeze_drops(both_hold).set_index(["run", "seed"])
    assert drops.loc[("lr a->b", 1), "drop"] == 19.0 and drops.loc[("lr a->a", 2), "drop"] == 3.0
    similar, simpler = freeze_findings(both_hold, "cfg")
    assert (similar.claim, similar.verdict, simpler.verdict) == ("4.1-similar", "holds qualitatively", "holds qualitatively")
    # differences per seed are exact (the same offset on both pairs): a->b minus a->a = 18, b->a minus a->b = 10
    assert "drop lr a->b - lr a->a +18.0 [18.0, 18.0]" in similar.ours and similar.configuration == "cfg"
    assert "drop lr b->a - lr a->b +10.0 [10.0, 10.0]" in simpler.ours  # a->b is simpler (80 % at k = 0)
    # LR holds claim 1, HN contradicts it: parts both ways
    disagree = _runs([("a->a", "lr", 90, 88), ("a->b", "lr", 80, 60), ("b->a", "lr", 70, 40),
                      ("a->a", "hn", 90, 70), ("a->b", "hn", 80, 79), ("b->a", "hn", 70, 69)])
    assert freeze_findings(disagree, "cfg")[0].verdict == "inconclusive"
    only_hn = disagree[disagree.strategy == "hn"]
    assert [f.verdict for f in freeze_findings(only_hn, "cfg")] == ["does not hold at this scale", "inconclusive"]
    assert freeze_findings(both_hold, "cfg", paper_setting=True)[0].verdict == "holds"
    assert freeze_findings(both_hold[both_hold.seed == 0], "cfg")[0].verdict == "inconclusive"  # one seed
    refused = freeze_findings(both_hold, "cfg", converged={"lr": False})[0]
    assert refused.verdict == "inconclusive" and "fine-tuned (LR-k, c = 0) not shown to converge" in refused.ours
    weak = freeze_findings(both_hold, "cfg", below_chance=["lr"])[0]
    assert weak.verdict == "inconclusive" and "fine-tuned (LR-k, c = 0) not clearly above chance" in weak.ours


def test_the_convergence_check_runs_the_first_seed_with_half_the_epochs():
    cfg = FreezeConfig(seeds=(3, 4, 5), epochs=8, max_per_class_test=600)
    half = cfg.half_length()
    assert half.seeds == (3,) and half.epochs == 4
    assert cfg.run_config("fashionmnist->digits", "hn", 2, 3).stream.max_per_class_test == 600
    assert cfg.chance == 20.0
