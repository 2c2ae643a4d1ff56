"""The freeze and noise chapters' convergence studies: the doubling rule per group, when a recorded study
applies to a chapter, and the gate it gives the ledger."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from phn.config import ConfigError
from phn.experiments.chapter_study import (
    CHAPTERS, applies, chapter_check, doubling_check, load_recorded, recorded_gate, run_study, study_config,
)
from phn.experiments.freeze import FreezeConfig
from phn.experiments.noise import NoiseConfig
from phn.profiles import PROFILES


def _study(rows):
    return pd.DataFrame([{"model": m, "stream": s, "seed": seed, "epochs": e, "learning_accuracy": la}
                         for m, s, seed, e, la in rows])


def test_the_doubling_rule_decides_both_ways_on_e_and_2e_and_one_way_on_the_last_doubling():
    study = _study([
        ("HN-2", "normal", 100, 8, 90.0), ("HN-2", "normal", 100, 16, 92.9),  # +2.9: converged at 8
        ("HN-2", "normal", 101, 8, 88.0), ("HN-2", "normal", 101, 16, 90.0),
        ("HN-2", "noisy", 100, 8, 80.0), ("HN-2", "noisy", 100, 16, 83.5),  # +3.5 on one seed: not converged
        ("HN-2", "noisy", 101, 8, 85.0), ("HN-2", "noisy", 101, 16, 85.0),
        ("LR-2", "normal", 100, 4, 90.0), ("LR-2", "normal", 100, 8, 91.0),  # only E/2 -> E
        ("LR-2", "noisy", 100, 4, 80.0), ("LR-2", "noisy", 100, 8, 90.0),
    ])
    check = doubling_check(study, ["model", "stream"], epochs=8).set_index(["model", "stream"])
    assert check.loc[("HN-2", "normal"), "status"] == "converged"
    assert check.loc[("HN-2", "normal"), "seeds"] == "100, 101" and check.loc[("HN-2", "normal"), "pairs"] == "8 → 16"
    assert check.loc[("HN-2", "normal"), "gain"] == pytest.approx(2.45)
    assert check.loc[("HN-2", "noisy"), "converged"] is False
    assert check.loc[("HN-2", "noisy"), "status"] == "not converged at this profile"
    # the last doubling decides one way only: on the plateau at E, or undecided
    assert check.loc[("LR-2", "normal"), "status"] == "converged" and check.loc[("LR-2", "normal"), "pairs"] == "4 → 8"
    assert check.loc[("LR-2", "noisy"), "converged"] is None and check.loc[("LR-2", "noisy"), "status"] == "undecided"
    assert check.loc[("LR-2", "noisy"), "learning_accuracy"] == 90.0  # at E, not E/2
    at_32 = doubling_check(study, ["model", "stream"], epochs=32)
    assert set(at_32.status) == {"not checked"} and at_32.converged.isna().all()


def _recorded(tmp_path, cfg, rows, finished=True):
    folder = tmp_path / "study"
    folder.mkdir()
    _study(rows).to_csv(folder / "study.csv", index=False)
    config = json.loads(json.dumps(dataclasses.asdict(dataclasses.replace(cfg, seeds=(100,), epochs=8))))
    (folder / "study.json").write_text(json.dumps({"command": "python -m phn.experiments.chapter_study noise ...",
                                                   "config": config, "finished": finished}))
    return folder


def _noise_cfg(**changes):
    return dataclasses.replace(NoiseConfig(**PROFILES["cpu"].values("noise")), **changes)


def _noise_runs(hn=90.0, lr=95.0):
    return pd.DataFrame([{"model": m, "stream": s, "seed": seed, "learning_accuracy": la + seed}
                         for m, la in (("LR-2", lr), ("HN-2", hn)) for s in ("normal", "noisy") for seed in (0, 1, 2)])


STUDY_ROWS = [(m, s, 100, e, la + (e == 16) * gain) for m, la, gain in (("LR-2", 95.0, 0.5), ("HN-2", 90.0, 4.0))
              for s in ("normal", "noisy") for e in (8, 16)]


def test_a_recorded_study_gives_the_gate_where_it_ran_the_chapters_sizes(tmp_path):
    cfg = _noise_cfg()
    folder = _recorded(tmp_path, cfg, STUDY_ROWS)
    assert applies(load_recorded(folder), cfg, "noise", _noise_runs()) == ""
    gate, command = recorded_gate("noise", cfg, _noise_runs(), folder)
    assert command.startswith("python -m phn.experiments.chapter_study noise")
    assert gate.converged == {"LR-2": True, "HN-2": False} and gate.below_chance == []
    assert set(gate.check.status) == {"converged", "not converged at this profile"}
    # learning clearly above chance is judged on the chapter's own (reported) runs
    weak, _ = recorded_gate("noise", cfg, _noise_runs(hn=60.0), folder)
    assert weak.below_chance == ["HN-2"]
    # seeds, epochs and Figure 7's curves may differ between the chapter and its study
    assert applies(load_recorded(folder), dataclasses.replace(cfg, seeds=(3, 4, 5), eval_every=7), "noise",
                   _noise_runs()) == ""


def test_a_recorded_study_does_not_decide_other_sizes_or_groups_it_did_not_run(tmp_path):
    cfg = _noise_cfg()
    recorded = load_recorded(_recorded(tmp_path, cfg, STUDY_ROWS))
    runs = _noise_runs()
    assert "max_per_class=500" in applies(recorded, dataclasses.replace(cfg, max_per_class=300), "noise", runs)
    assert "buffer_size" in applies(recorded, dataclasses.replace(cfg, buffer_size=40), "noise", runs)
    deeper = pd.concat([runs, runs.assign(model=runs.model.str.replace("-2", "-3"))])
    assert applies(recorded, dataclasses.replace(cfg, depths=(2, 3)), "noise", deeper) == (
        "the recorded study did not run LR-3/normal, LR-3/noisy, HN-3/normal, HN-3/noisy")
    gate, why = recorded_gate("noise", dataclasses.replace(cfg, max_per_class=300), _noise_runs(), tmp_path / "study")
    assert gate is None and "other sizes" in why
    assert recorded_gate("noise", cfg, _noise_runs(), tmp_path / "nothing") == (None, "no recorded study")


def test_an_unfinished_study_is_not_rendered(tmp_path):
    cfg = _noise_cfg()
    assert load_recorded(_recorded(tmp_path, cfg, STUDY_ROWS, finished=False)) is None


def test_without_a_study_that_applies_the_chapter_checks_its_first_seed_at_half_the_epochs(tmp_path):
    cfg = NoiseConfig(depths=(4,), freeze_depth=4, seeds=(0, 1), max_per_class=8, max_per_class_test=8, epochs=2,
                      eval_every=0, batch_size=8, buffer_size=4)
    runs = CHAPTERS["noise"].rows(cfg, tmp_path / "runs")
    gate, source = chapter_check("noise", cfg, runs, root=tmp_path / "runs", folder=tmp_path / "none")
    assert "seed 0 again with 1 epochs" in source and "no recorded study" in source
    assert set(gate.check.seeds) == {"0"} and set(gate.converged) == {"LR-4", "HN-4"}


def test_a_study_runs_the_chapters_grid_on_tuning_seeds_at_every_epoch_count_without_curves(tmp_path):
    cfg = FreezeConfig(pairs=("fashionmnist->fashionmnist",), depths=(0, 4), strategies=("lr",), seeds=(0,),
                       max_per_class=8, max_per_class_test=8, epochs=3, batch_size=8)
    assert study_config("freeze", cfg, [100], 2) == dataclasses.replace(cfg, seeds=(100,), epochs=2)
    noise = study_config("noise", _noise_cfg(), [100, 101], 16)
    assert noise.eval_every == 0 and noise.seeds == (100, 101) and noise.epochs == 16
    study = run_study("freeze", cfg, seeds=[100], ladder=(2, 1), out=tmp_path / "out", root=tmp_path / "runs")
    assert list(study.epochs) == [1, 1, 2, 2] and set(study.seed) == {100} and set(study.depth) == {0, 4}
    assert pd.read_csv(tmp_path / "out" / "study.csv").shape == study.shape
    assert set(doubling_check(study, CHAPTERS["freeze"].by, 1).status) <= {"converged", "not converged at this profile"}


def test_the_noise_chapter_may_run_without_curves_but_not_with_negative_steps():
    assert NoiseConfig(eval_every=0).run_config("noisy", "hn", 2, 0).train.eval_every == 0
    with pytest.raises(ConfigError, match="eval_every"):
        NoiseConfig(eval_every=-1)


def _cpu_groups(chapter, cfg):
    """The groups the chapter's grid at ``cfg`` runs (its ``by`` columns), on seed 0."""
    if chapter == "freeze":
        rows = [{"pair": p, "strategy": s, "depth": k} for p in cfg.pairs for s in cfg.strategies for k in cfg.depths]
    else:
        rows = [{"model": f"{name}-{k}" if k else f"{name}-F" if name == "HN" else "LR-0", "stream": stream}
                for k in cfg.all_depths for name in ("LR", "HN") for stream in ("normal", "noisy")]
    return pd.DataFrame(rows).assign(seed=0, learning_accuracy=90.0)


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_the_recorded_chapter_studies_decide_the_cpu_profile(chapter):
    """The committed studies ran the cpu profile's sizes and every group of its grid, on both tuning
    seeds, at the profile's epochs and twice them (or half them): the chapter renders them."""
    spec = CHAPTERS[chapter]
    cfg = spec.config(**PROFILES["cpu"].values(chapter), profile="cpu")
    runs = _cpu_groups(chapter, cfg)
    gate, command = recorded_gate(chapter, cfg, runs)
    assert gate is not None, command
    assert command.startswith(f"python -m phn.experiments.chapter_study {chapter}")
    assert (gate.check.status != "not checked").all() and set(gate.check.seeds) == {"100, 101"}
    assert set(gate.converged) == set(runs[spec.key])
