"""The freeze and noise chapters' convergence studies: their runs at E and 2E epochs on tuning seeds.

The benchmark family is sized on :mod:`phn.experiments.convergence`'s study of the split stream. The
freeze chapter (five-class experiences, :mod:`phn.experiments.freeze`) and the noise chapter (the noisy
stream and its normal twin, :mod:`phn.experiments.noise`) train other streams, so each has a study of its
own: the chapter's grid at its profile, on tuning seeds that no reported number uses, at every epoch
count of a ladder (e.g. 8 and 16). The same rule decides (:func:`phn.experiments.convergence.converged`):
a group of runs (a model on one stream; a strategy at one pair and depth) has converged at E epochs when,
on every tuning seed, its learning accuracy is within the tolerance of the same run with 2E epochs.

A chapter renders the recorded study (:func:`recorded_gate`) when the study ran the chapter's sizes and
covers every group of its grid; otherwise (another profile, a ``-p`` override) it falls back on its own
half-length check (:func:`phn.experiments.convergence.chapter_gate`).

Run it (``--out`` gets ``study.csv``, one row per run, rewritten after every configuration, and
``study.json``: the chapter's config, every command that wrote the folder with its machine, and
``finished``); a later command with the same ``--out`` adds seeds or epochs to the study::

    python -m phn.experiments.chapter_study noise --seeds 100 101 --epochs 8 16 --out benchmarks/results/convergence-noise
    python -m phn.experiments.chapter_study freeze --seeds 100 101 --epochs 8 16 --out benchmarks/results/convergence-freeze
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phn.config import ConfigError
from phn.experiments.convergence import (
    DEFAULT_TOLERANCE, TUNING_SEEDS, ChapterGate, chapter_gate, converged, machine_record,
)
from phn.experiments.freeze import FreezeConfig, run_freeze
from phn.experiments.noise import NoiseConfig, learning_by_run, run_noise
from phn.profiles import configure
from phn.provenance import REPO_DIR
from phn.results import write_text

STUDY_FILE, META_FILE = "study.csv", "study.json"
# what is allowed to differ between a chapter and its study: the grid's seeds and epochs, Figure 7's
# curves (evaluations during training change no training step) and the profile bookkeeping
FREE_FIELDS = frozenset({"seeds", "epochs", "eval_every", "profile", "overridden"})


@dataclass(frozen=True)
class ChapterSpec:
    """How to study one chapter.

    Attributes:
        config: the chapter's config class (:class:`FreezeConfig`, :class:`NoiseConfig`).
        by: the columns naming one group of runs (one strategy's runs at one point of the grid).
        key: the column naming a strategy (what :func:`phn.ledger.judge` skips when not converged).
        clear_by: the groups whose mean must be clearly above chance (:func:`chapter_gate`).
        grid: the config fields that choose which groups exist.
        rows: the chapter's runs of one config as rows ``by``, ``seed``, ``learning_accuracy``
            (percent), ``train_time_s``.
        recorded: the recorded study of the ``cpu`` profile, relative to the repository root.
    """

    config: type
    by: tuple[str, ...]
    key: str
    clear_by: tuple[str, ...]
    grid: tuple[str, ...]
    rows: Callable[[Any, str | os.PathLike | None], pd.DataFrame]
    recorded: str


def _freeze_rows(cfg: FreezeConfig, root: str | os.PathLike | None = None) -> pd.DataFrame:
    runs, _ = run_freeze(cfg, root, progress=False)
    return runs.rename(columns={"acc_second": "learning_accuracy"})[
        ["pair", "strategy", "depth", "seed", "learning_accuracy", "train_time_s"]]


def _noise_rows(cfg: NoiseConfig, root: str | os.PathLike | None = None) -> pd.DataFrame:
    return learning_by_run(run_noise(cfg, root, progress=False))


CHAPTERS: dict[str, ChapterSpec] = {
    "freeze": ChapterSpec(FreezeConfig, ("pair", "strategy", "depth"), "strategy", ("strategy",),
                          ("pairs", "depths", "strategies"), _freeze_rows, "benchmarks/results/convergence-freeze"),
    "noise": ChapterSpec(NoiseConfig, ("model", "stream"), "model", ("model", "stream"),
                         ("depths", "freeze_depth"), _noise_rows, "benchmarks/results/convergence-noise"),
}


def study_config(chapter: str, cfg: Any, seeds: Sequence[int], epochs: int) -> Any:
    """``cfg`` (a chapter config) on the tuning ``seeds`` with ``epochs`` per experience and no
    accuracy-over-time curves."""
    extra = {"eval_every": 0} if chapter == "noise" else {}
    return dataclasses.replace(cfg, seeds=tuple(seeds), epochs=epochs, **extra)


def run_study(chapter: str, cfg: Any, seeds: Sequence[int] = TUNING_SEEDS, ladder: Sequence[int] = (8, 16),
              out: str | os.PathLike | None = None, root: str | os.PathLike | None = None) -> pd.DataFrame:
    """Train (or read from the results cache under ``root``) the chapter's grid at every epoch count
    of ``ladder`` on ``seeds``. One row per run: the chapter's ``by`` columns, seed, epochs,
    learning_accuracy (percent), train_time_s. With ``out``, ``out/study.csv`` is rewritten after every
    epoch count and seed, so a study stopped half-way keeps what it measured; the runs it already holds
    for other seeds or epochs stay (a study extended by a longer rung keeps its shorter ones)."""
    spec = CHAPTERS[chapter]
    path = None if out is None else Path(out) / STUDY_FILE
    parts = [pd.read_csv(path)] if path is not None and path.is_file() else []
    keys = [*spec.by, "seed", "epochs"]
    for epochs in sorted(ladder):
        for seed in seeds:
            rows = spec.rows(study_config(chapter, cfg, [seed], epochs), root)
            parts.append(rows.assign(epochs=epochs))
            study = pd.concat(parts, ignore_index=True).drop_duplicates(keys, keep="last").reset_index(drop=True)
            if path is not None:
                write_text(path, study.to_csv(index=False))
    return study


def doubling_check(study: pd.DataFrame, by: Sequence[str], epochs: int,
                   tolerance: float = DEFAULT_TOLERANCE) -> pd.DataFrame:
    """The rule applied to every group of ``by`` at ``epochs`` = E, per tuning seed: the pair (E, 2E)
    where the study has both (decides both ways), else the last doubling (E/2, E), which decides one
    way only (as :func:`phn.experiments.convergence.profile_check`: a gain above the tolerance is
    undecided).

    Returns:
        One row per group: ``by``, learning_accuracy (mean over the checked seeds at E), gain (mean),
        seeds, pairs, converged (True: every checked seed converged; False: one did not; None:
        undecided or not checked), status (``"converged"``, ``"not converged at this profile"``,
        ``"undecided"``, ``"not checked"``).
    """
    keyed = study.set_index([*by, "seed", "epochs"]).learning_accuracy
    rows = []
    for group, part in study.groupby(list(by), sort=False):
        group = group if isinstance(group, tuple) else (group,)
        checks = []  # (seed, accuracy at E, gain, converged True / False / None, pair)
        for seed in dict.fromkeys(part.seed):
            have = set(part[part.seed == seed].epochs)
            at = lambda e: float(keyed[(*group, seed, e)])  # noqa: E731
            if {epochs, 2 * epochs} <= have:
                gain = at(2 * epochs) - at(epochs)
                checks.append((seed, at(epochs), gain, converged(at(epochs), at(2 * epochs), tolerance),
                               f"{epochs} → {2 * epochs}"))
            elif epochs % 2 == 0 and {epochs // 2, epochs} <= have:
                gain = at(epochs) - at(epochs // 2)
                checks.append((seed, at(epochs), gain, True if converged(at(epochs // 2), at(epochs), tolerance)
                               else None, f"{epochs // 2} → {epochs}"))
        outcomes = [c[3] for c in checks]
        ok = None if not checks else False if False in outcomes else None if None in outcomes else True
        status = ("not checked" if not checks else "not converged at this profile" if ok is False
                  else "undecided" if ok is None else "converged")
        rows.append({**dict(zip(by, group, strict=True)),
                     "learning_accuracy": float(np.mean([c[1] for c in checks])) if checks else np.nan,
                     "gain": float(np.mean([c[2] for c in checks])) if checks else np.nan,
                     "seeds": ", ".join(str(c[0]) for c in checks), "pairs": ", ".join(dict.fromkeys(c[4] for c in checks)),
                     "converged": ok, "status": status})
    return pd.DataFrame(rows, columns=[*by, "learning_accuracy", "gain", "seeds", "pairs", "converged", "status"])


@dataclass
class RecordedStudy:
    """A chapter's recorded study (:func:`load_recorded`).

    Attributes:
        study: :data:`STUDY_FILE`'s rows.
        config: the chapter config it ran (its sizes; seeds and epochs are the ladder's).
        command: how to reproduce it.
        meta: the whole :data:`META_FILE`.
    """

    study: pd.DataFrame
    config: dict[str, Any]
    command: str
    meta: dict[str, Any]


def load_recorded(folder: str | os.PathLike) -> RecordedStudy | None:
    """The study recorded in ``folder`` (relative paths from the repository root), or None when it has
    not been recorded (or not finished)."""
    folder = Path(folder) if Path(folder).is_absolute() else REPO_DIR / folder
    if not (folder / STUDY_FILE).is_file() or not (folder / META_FILE).is_file():
        return None
    meta = json.loads((folder / META_FILE).read_text())
    if not meta.get("finished"):
        return None
    return RecordedStudy(pd.read_csv(folder / STUDY_FILE), meta["config"], str(meta.get("command", "")), meta)


def differing_sizes(config: dict[str, Any], other: dict[str, Any], chapter: str) -> list[str]:
    """The fields of two configs of ``chapter`` (as JSON dicts) that differ in size: any field but
    :data:`FREE_FIELDS` and the grid's (which groups run)."""
    grid = CHAPTERS[chapter].grid
    return sorted(k for k in config if k not in FREE_FIELDS and k not in grid and config[k] != other.get(k))


def applies(recorded: RecordedStudy, cfg: Any, chapter: str, runs: pd.DataFrame) -> str:
    """Why the recorded study does not decide the chapter's check at ``cfg`` ("" when it does): a
    size that differs (:func:`differing_sizes`), or a group of the chapter's ``runs`` (its ``by``
    columns) that the study never ran."""
    spec = CHAPTERS[chapter]
    mine = json.loads(json.dumps(dataclasses.asdict(cfg)))  # tuples as lists, as the JSON holds them
    differ = differing_sizes(mine, recorded.config, chapter)
    if differ:
        return f"the recorded study ran other sizes ({', '.join(f'{k}={recorded.config.get(k)}' for k in differ)})"
    groups = runs[list(spec.by)].drop_duplicates()
    ran = groups.merge(recorded.study[list(spec.by)].drop_duplicates(), on=list(spec.by), how="left", indicator=True)
    missing = ran[ran["_merge"] == "left_only"]
    if len(missing):
        names = ["/".join(str(v) for v in row) for row in missing[list(spec.by)].itertuples(index=False)]
        return f"the recorded study did not run {', '.join(names)}"
    return ""


def recorded_gate(chapter: str, cfg: Any, runs: pd.DataFrame, folder: str | os.PathLike | None = None,
                  tolerance: float = DEFAULT_TOLERANCE) -> tuple[ChapterGate | None, str]:
    """The chapter's convergence gate from its recorded study, or ``(None, why)`` when the study is
    missing or does not apply (:func:`applies`): then the chapter runs its own half-length check.

    Args:
        runs: the chapter's runs at ``cfg`` (reported seeds): columns ``by``, ``seed``,
            ``learning_accuracy``; learning clearly above chance is judged on them.

    Returns:
        The gate (its ``check`` is :func:`doubling_check`'s table for the groups of ``runs``, with
        ``above_chance``) and the study's command.
    """
    spec = CHAPTERS[chapter]
    recorded = load_recorded(folder or spec.recorded)
    if recorded is None:
        return None, "no recorded study"
    why = applies(recorded, cfg, chapter, runs)
    if why:
        return None, why
    groups = runs[list(spec.by)].drop_duplicates()
    study = recorded.study.merge(groups, on=list(spec.by))
    check = doubling_check(study, spec.by, cfg.epochs, tolerance)
    gate = chapter_gate(runs, None, list(spec.by), spec.key, cfg.chance, clear_by=list(spec.clear_by),
                        tolerance=tolerance)
    checked = check[check.status != "not checked"]
    gate.converged = ({str(k): bool(g.converged.eq(True).all()) for k, g in checked.groupby(spec.key, sort=False)}
                      if len(checked) else None)
    gate.check = check
    return gate, recorded.command


def chapter_check(chapter: str, cfg: Any, runs: pd.DataFrame, root: str | os.PathLike | None = None,
                  folder: str | os.PathLike | None = None) -> tuple[ChapterGate, str]:
    """A chapter's "have the strategies converged?" section: the recorded study where it applies
    (:func:`recorded_gate`), else the chapter's own check, its first seed again with half the epochs
    (trained here, cached like the others; :func:`phn.experiments.convergence.chapter_gate`).

    Args:
        runs: the chapter's runs at ``cfg``: columns ``by``, ``seed``, ``learning_accuracy`` (percent).
        root: the results cache of the half-length runs (default ``runs/``).
        folder: the recorded study (default the chapter's :attr:`ChapterSpec.recorded`).

    Returns:
        The gate, and one Markdown sentence saying where the check comes from.
    """
    spec = CHAPTERS[chapter]
    gate, how = recorded_gate(chapter, cfg, runs, folder)
    if gate is not None:
        pairs = ", ".join(dict.fromkeys(p for p in gate.check.pairs if p))
        return gate, (f"Checked on the recorded study on tuning seeds ({pairs} epochs), rendered from "
                      f"`benchmarks/results/{Path(folder or spec.recorded).name}`, recorded by `{how}`.")
    half = cfg.half_length()
    short = spec.rows(half, root) if half.epochs < cfg.epochs else None  # one epoch: nothing shorter
    gate = chapter_gate(runs, short, list(spec.by), spec.key, cfg.chance, clear_by=list(spec.clear_by))
    return gate, (f"Checked on this chapter's own runs: seed {half.seeds[0]} again with {half.epochs} epochs "
                  f"({how}).")


def study_table(chapter: str, folder: str | os.PathLike | None = None) -> pd.DataFrame | None:
    """A recorded chapter study as a table for the book: one row per group and seed, one column per
    epoch count (learning accuracy, percent); None when nothing is recorded."""
    spec = CHAPTERS[chapter]
    recorded = load_recorded(folder or spec.recorded)
    if recorded is None:
        return None
    wide = recorded.study.pivot_table(index=[*spec.by, "seed"], columns="epochs", values="learning_accuracy",
                                      sort=False)
    wide.columns = [f"{e} epochs" for e in wide.columns]
    return wide.reset_index()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m phn.experiments.chapter_study CHAPTER``: run a chapter's study at a profile."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m phn.experiments.chapter_study", description=__doc__.splitlines()[0])
    parser.add_argument("chapter", choices=sorted(CHAPTERS))
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(TUNING_SEEDS))
    parser.add_argument("--epochs", nargs="+", type=int, default=[8, 16])
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=JSON",
                        help="a chapter parameter other than the profile's, e.g. strategies='[\"lr\"]'")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    spec = CHAPTERS[args.chapter]
    try:
        given = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
        cfg = configure(spec.config, args.profile, given)
    except (ConfigError, ValueError) as err:
        raise SystemExit(f"chapter_study: {err}") from None
    if any(e < 1 for e in args.epochs):
        raise SystemExit("chapter_study: --epochs must be positive")
    tic = time.perf_counter()
    meta_path = Path(args.out) / META_FILE
    config = json.loads(json.dumps(dataclasses.asdict(cfg)))
    earlier = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    if earlier is not None:  # extending a study: the same sizes (any part of the grid), one more command
        differ = differing_sizes(config, earlier["config"], args.chapter)
        if differ:
            raise SystemExit(f"chapter_study: {args.out} holds a study of other sizes ({', '.join(differ)}); "
                             "choose another --out")
    run = machine_record("python -m phn.experiments.chapter_study", argv)
    runs = [*(earlier or {}).get("runs", []), run]
    meta: dict[str, Any] = {"command": "; ".join(r["command"] for r in runs),
                            "config": earlier["config"] if earlier else config, "runs": runs,
                            "finished": False}
    write_text(meta_path, json.dumps(meta, indent=1) + "\n")  # a study stopped half-way says what it ran
    study = run_study(args.chapter, cfg, args.seeds, args.epochs, out=args.out)
    run.update(seconds=round(time.perf_counter() - tic, 1))
    meta.update(finished=True)
    write_text(meta_path, json.dumps(meta, indent=1) + "\n")
    for epochs in sorted(set(study.epochs)):
        print(f"at {epochs} epochs:")
        print(doubling_check(study, spec.by, epochs).round(1).to_string(index=False))


if __name__ == "__main__":
    main()


__all__ = ["CHAPTERS", "FREE_FIELDS", "ChapterSpec", "RecordedStudy", "applies", "differing_sizes", "chapter_check", "doubling_check", "load_recorded",
           "recorded_gate", "run_study", "study_config", "study_table"]
