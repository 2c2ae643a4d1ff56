"""Section 4.1 experiment: its typed config, the grid it runs (experience 1 of LR trained once), and
the claims it computes."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from phn.config import ConfigError, from_dict
from phn.experiments.freeze import FreezeConfig, freeze_claims, freeze_conclusion, freeze_summary, freeze_table, run_freeze


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


def test_smoke_sizing_shrinks_the_grid_only_under_the_suite(monkeypatch):
    cfg = FreezeConfig()
    monkeypatch.setenv("PHN_SMOKE", "0")
    assert cfg.smoke_sized() == cfg
    monkeypatch.setenv("PHN_SMOKE", "1")
    small = cfg.smoke_sized()
    assert (small.pairs, small.depths, small.seeds, small.max_per_class, small.epochs) == (
        cfg.pairs[:1], (0, 4), (0,), 20, 1)


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


def test_claims_and_conclusion():
    summary = _summary([("a->a", "lr", 90, 88), ("a->b", "lr", 80, 60), ("b->a", "lr", 70, 40),
                        ("a->a", "hn", 90, 70), ("a->b", "hn", 80, 79), ("b->a", "hn", 70, 69)])
    claims = freeze_claims(summary).set_index(["pair", "strategy"])
    assert claims.loc[("a->a", "lr")].similar and claims.loc[("a->b", "lr")].accuracy_drop == 20
    text = freeze_conclusion(freeze_claims(summary))
    lr_line, lr_direction, hn_line, hn_direction = text.splitlines()
    assert "2.0 points on the similar pair and 25.0" in lr_line and "claim 1 holds" in lr_line
    assert "a->b, 80.0 % at k = 0" in lr_direction and "claim 2 holds" in lr_direction  # a->b simpler, drops less
    assert "claim 1 does not hold" in hn_line and "claim 2 does not hold" in hn_direction
    table = freeze_table(summary)
    assert list(table.columns) == ["pair", "strategy", "k = 0", "k = 4"] and table.iloc[0]["k = 0"] == "90.0 ± 1.0"


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


def test_a_strategy_near_chance_is_reported_as_not_learning():
    summary = _summary([("a->a", "lr", 90, 88), ("a->b", "lr", 80, 60), ("a->a", "hn", 25, 20), ("a->b", "hn", 22, 21)])
    text = freeze_conclusion(freeze_claims(summary), summary, chance=20.0)
    assert "claim 1 holds" in text.splitlines()[0]
    assert "partial HN (HN-k)** did not learn experience 2" in text and "22.0 %" in text and "guessing gives 20 %" in text


def test_findings_for_the_ledger():
    from phn.experiments.freeze import freeze_findings, freeze_verdicts

    both_hold = _summary([("a->a", "lr", 90, 88), ("a->b", "lr", 80, 60), ("b->a", "lr", 70, 40)])
    similar, simpler = freeze_findings(freeze_verdicts(freeze_claims(both_hold)), "cfg")
    assert (similar.claim, similar.verdict, simpler.verdict) == ("4.1-similar", "holds qualitatively", "holds qualitatively")
    assert "2.0 points on the similar pair, 25.0" in similar.ours and similar.configuration == "cfg"
    # LR holds claim 1, HN contradicts it: the strategies disagree
    disagree = _summary([("a->a", "lr", 90, 88), ("a->b", "lr", 80, 60), ("b->a", "lr", 70, 40),
                         ("a->a", "hn", 90, 70), ("a->b", "hn", 80, 79), ("b->a", "hn", 70, 69)])
    assert freeze_findings(freeze_verdicts(freeze_claims(disagree)), "cfg")[0].verdict == "inconclusive"
    only_hn = disagree[disagree.strategy == "hn"]
    assert [f.verdict for f in freeze_findings(freeze_verdicts(freeze_claims(only_hn)), "cfg")] == [
        "does not hold at this scale"] * 2
    near_chance = _summary([("a->a", "hn", 25, 20), ("a->b", "hn", 22, 21)])
    finding = freeze_findings(freeze_verdicts(freeze_claims(near_chance), near_chance, chance=20.0), "cfg")[0]
    assert finding.verdict == "inconclusive" and "did not learn" in finding.ours
