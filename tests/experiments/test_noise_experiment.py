"""Section 4.2 experiment: typed config, the normal/noisy grid (experience 1 shared), Table 1, Figure 7's
curves, Figure 6's filters and the computed claim."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from phn.config import ConfigError, from_dict
from phn.experiments.noise import (
    NoiseConfig, first_experience_curves, generated_filters, learning_by_run, learning_table, noise_drops, noisy_drop,
    run_directory, run_noise,
)
from phn.results import Results

FASHION = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


@pytest.mark.parametrize("values,message", [
    ({"freeze_depth": 9}, "freeze_depth"), ({"epochs": "abc"}, "epochs"), ({"depths": [2, 7]}, "depths"),
    ({"dataset": "imagenet"}, "dataset"), ({"freez_depth": 2}, "unknown key"),
])
def test_bad_parameters_are_named(values, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(NoiseConfig, values)


def test_depths_include_the_filter_depth_and_configs():
    cfg = NoiseConfig(freeze_depth=1, depths=(3, 2))
    assert cfg.all_depths == (1, 2, 3)
    noisy, normal = cfg.run_config("noisy", "lr", 2, 5), cfg.run_config("normal", "lr", 2, 5)
    assert noisy.stream.corrupt and not normal.stream.corrupt and noisy.stream.name == "noisy-fashionmnist"
    assert noisy.strategy.replay_coef == 1.0 and noisy.train.eval_every == 10 and noisy.train.batch_size == 16 and noisy.label == "LR-2"


def _results(e1_final, diag):
    acc = np.full((4, 4), np.nan)
    for i in range(4):
        acc[i, : i + 1] = 0.5
        acc[i, i] = diag[i]
    acc[:, 0] = [0.9, 0.8, 0.7, e1_final]
    curves = pd.DataFrame({"trained_experience": [0, 1, 3], "epoch": 0, "step": 0, "global_step": [0, 10, 30],
                           "evaluated_experience": 0, "accuracy": [0.1, 0.85, e1_final]})
    return Results(acc, np.zeros(4), np.zeros(4), np.zeros(4), curves=curves)


def test_tables_and_conclusion_from_results():
    results = {("normal", "lr", 2, 0): _results(0.85, [0.9, 0.9, 0.9, 0.9]),
               ("noisy", "lr", 2, 0): _results(0.55, [0.9, 0.8, 0.9, 0.9]),
               ("normal", "hn", 2, 0): _results(0.88, [0.9, 0.7, 0.7, 0.7]),
               ("noisy", "hn", 2, 0): _results(0.87, [0.9, 0.6, 0.7, 0.7])}
    table = learning_table(results)
    assert list(table.model) == ["HN-2", "HN-2", "LR-2", "LR-2"] and list(table.stream) == ["normal", "noisy"] * 2
    assert table.set_index(["model", "stream"]).loc[("LR-2", "noisy"), "e2"] == "80.0 ± 0.0"
    drop = noisy_drop(results).set_index("strategy")
    assert drop.loc["lr", "noise_drop"] == pytest.approx(30) and drop.loc["hn", "noise_drop"] == pytest.approx(1)
    per_seed = noise_drops(results).set_index("strategy")
    assert per_seed.loc["lr", "noise_drop"] == pytest.approx(30) and per_seed.loc["lr", "seed"] == 0
    learned = learning_by_run(results).set_index(["model", "stream"])
    assert learned.loc[("HN-2", "noisy"), "learning_accuracy"] == pytest.approx(100 * np.mean([0.9, 0.6, 0.7, 0.7]))
    curves = first_experience_curves(results)
    lr_noisy = curves[(curves.strategy == "lr") & (curves.stream == "noisy")]
    assert lr_noisy.forgetting.isna().tolist() == [True, False, False]  # not forgetting while learning it
    assert lr_noisy.forgetting.iloc[-1] == pytest.approx(35.0)  # 90 learned -> 55 at the end


@pytest.mark.skipif(not os.path.exists(FASHION), reason="needs apt-get install dataset-fashion-mnist")
def test_grid_shares_experience_one_and_shows_filters(tmp_path):
    cfg = NoiseConfig(freeze_depth=2, depths=(4,), seeds=(0,), max_per_class=8, epochs=1, eval_every=1)
    results = run_noise(cfg, root=tmp_path, progress=False)
    assert len(results) == 2 * 2 * 2  # (lr, hn) x depths (2, 4) x (normal, noisy)
    for strategy in ("lr", "hn"):
        normal, noisy = results["normal", strategy, 2, 0], results["noisy", strategy, 2, 0]
        assert normal.acc[0, 0] == noisy.acc[0, 0]  # experience 1 trained once
        saved = json.loads((run_directory(cfg, ("noisy", strategy, 2, 0), tmp_path) / "config.json").read_text())
        assert saved["start_from"]["experience"] == 0
        assert not noisy.curves.empty and set(noisy.curves.trained_experience) == {0, 1, 2, 3}
    filters = generated_filters(run_directory(cfg, ("noisy", "hn", 2, 0), tmp_path))
    assert filters.layer == "stage3.0.conv1.weight" and set(filters.filters) == {2, 3}
    assert filters.filters[2].shape == (80, 40, 3, 3) and -1 <= filters.cosine <= 1 and filters.relative_difference >= 0
    assert generated_filters(run_directory(cfg, ("noisy", "hn", 4, 0), tmp_path)) is None  # only a classifier


def _seeds(lr_drops, hn_drops, depth=2):
    """Results of LR-k and HN-k on both streams, one seed per pair of drops (points)."""
    results = {}
    for seed, (lr, hn) in enumerate(zip(lr_drops, hn_drops, strict=True)):
        for strategy, drop in (("lr", lr), ("hn", hn)):
            results["normal", strategy, depth, seed] = _results(0.9, [0.9] * 4)
            results["noisy", strategy, depth, seed] = _results(0.9 - drop / 100, [0.9] * 4)
    return results


def test_findings_for_the_ledger():
    from phn.experiments.noise import GeneratedFilters, noise_findings

    holds = {**_seeds([30, 28, 33], [1, 2, 0]), **_seeds([10, 12, 11], [2, 1, 3], depth=3)}
    (finding,) = noise_findings(holds, {}, "cfg")
    assert finding.verdict == "holds qualitatively" and "noise drop LR-2 - HN-2 +29.3 [" in finding.ours
    assert noise_findings(holds, {}, "cfg", paper_setting=True)[0].verdict == "holds"
    one_seed = {k: v for k, v in holds.items() if k[3] == 0}
    assert noise_findings(one_seed, {}, "cfg")[0].verdict == "inconclusive"  # one seed decides nothing
    mixed = {**_seeds([30, 28, 33], [1, 2, 0]), **_seeds([0.5, 0, 1], [0, 0.5, 0.5], depth=3)}
    assert noise_findings(mixed, {}, "cfg")[0].verdict == "inconclusive"
    never = {**_seeds([0.5, 0, 1], [0, 0.5, 0.5]), **_seeds([1, 2, 1], [9, 10, 12], depth=3)}
    assert noise_findings(never, {}, "cfg")[0].verdict == "does not hold at this scale"
    refused = noise_findings(holds, {}, "cfg", converged={"HN-3": False})[0]
    assert refused.verdict == "inconclusive" and "HN-3 not shown to converge" in refused.ours
    weak = noise_findings(holds, {}, "cfg", below_chance=["HN-2"])[0]
    assert weak.verdict == "inconclusive" and "HN-2" in weak.ours

    def filters(difference):
        return GeneratedFilters("stage3.0.conv1.weight", {}, 0.5, difference)

    verdicts = [noise_findings(holds, {0: filters(d), 1: filters(d + 0.1)}, "cfg")[1].verdict for d in (0.8, 0.3, 0.004)]
    assert verdicts == ["holds qualitatively", "inconclusive", "inconclusive"]
    assert noise_findings(holds, {0: filters(0.004), 1: filters(0.02)}, "cfg")[1].verdict == "does not hold at this scale"
    text = noise_findings(holds, {0: filters(0.004), 1: filters(0.02)}, "cfg")[1].ours
    assert "0.4 % (seed 0), 2.0 % (seed 1) of the filters' norm" in text
    assert noise_findings(holds, {0: filters(0.8)}, "cfg", converged={"HN-2": False})[1].verdict == "inconclusive"
    assert len(noise_findings(holds, {0: None}, "cfg")) == 1  # no generated conv: no filters finding


def test_the_convergence_check_runs_the_first_seed_with_half_the_epochs():
    cfg = NoiseConfig(seeds=(3, 4, 5), epochs=8, max_per_class_test=600)
    half = cfg.half_length()
    assert half.seeds == (3,) and half.epochs == 4 and half.max_per_class_test == 600
    assert cfg.run_config("noisy", "hn", 2, 3).stream.max_per_class_test == 600
    assert cfg.chance == 50.0 and NoiseConfig(classes_per_experience=5).chance == 20.0
