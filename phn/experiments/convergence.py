"""How long each strategy must train before it has learned what it can: the sizing study (issue 19).

For every strategy of the benchmark stream, the same run is repeated with 1, 2, 4, 8, ... epochs per
experience (the other sizes fixed), on tuning seeds that no reported number uses. The study reports
learning accuracy (mean over a run's experiences, and per experience) against the number of Adam
updates per experience, and decides convergence with one rule (:func:`converged`):

    a run of E epochs has **converged** when its mean learning accuracy is within ``tolerance``
    (3) points of the same run (same seed, same class order) with 2E epochs.

A profile's chapters are sized on it (:mod:`phn.profiles`); a strategy that has not converged at a
profile's epochs is reported as "not converged at this profile" and the claims resting on it are not
judged (:func:`phn.ledger.not_judged_reason`).

Run it (results land in ``--out``: ``convergence.csv``, one row per run, rewritten after every run, and
``convergence.json``, the command, machine and config, ``finished`` once every run is done); finished
runs come from the results cache and an interrupted run from its checkpoint, so an interrupted study
continues where it stopped::

    python -m phn.experiments.convergence --seeds 100 --epochs 1 2 4 8 --out benchmarks/results/convergence
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from phn import metrics
from phn.config import ConfigError, RunConfig
from phn.experiments.benchmarks import CLEAR_MARGIN, TABLE2_STRATEGIES, StreamSizes
from phn.provenance import REPO_DIR
from phn.results import Results, write_text
from phn.sweep import run_configs

DEFAULT_TOLERANCE = 3.0
TUNING_SEEDS = (100, 101)  # the ablations' tuning seeds: no reported number uses them


@dataclass(frozen=True)
class ConvergenceConfig(StreamSizes):
    """The sizing study: :class:`~phn.experiments.benchmarks.StreamSizes` (the benchmark's stream) run
    at every epoch count of ``epochs_ladder``.

    Attributes:
        seeds: tuning seeds (default 100 and 101; never the reported seeds).
        strategies: paper labels (default Table 2's).
        epochs_ladder: epochs per experience, each the double of the one before for the check.
        tolerance: the convergence rule's points (:func:`converged`).
    """

    seeds: tuple[int, ...] = TUNING_SEEDS
    max_per_class: int | None = 500
    batch_size: int = 32
    strategies: tuple[str, ...] = TABLE2_STRATEGIES
    epochs_ladder: tuple[int, ...] = (1, 2, 4, 8)
    tolerance: float = DEFAULT_TOLERANCE

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.strategies or not self.epochs_ladder or any(e < 1 for e in self.epochs_ladder):
            raise ConfigError("ConvergenceConfig: strategies and epochs_ladder (positive epochs) must not be empty")
        if not self.tolerance > 0:
            raise ConfigError(f"ConvergenceConfig.tolerance must be positive, got {self.tolerance}")

    def run_config(self, label: str, seed: int, epochs: int) -> RunConfig:
        """The benchmark's run of ``label`` and ``seed`` with ``epochs`` per experience and no
        accuracy-over-time curves (the study reads the accuracy matrix only)."""
        cfg = dataclasses.replace(self, epochs=epochs).benchmark(self.strategies).run_config(label, seed)
        return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, eval_every=0))

    def jobs(self) -> list[tuple[str, int, int]]:
        """(label, seed, epochs) of every run, shortest runs first (a study stopped early still has
        the whole ladder's low end)."""
        return [(label, seed, epochs) for epochs in sorted(self.epochs_ladder) for seed in self.seeds
                for label in self.strategies]


def study_row(label: str, seed: int, epochs: int, res: Results) -> dict[str, float | int | str]:
    """One run of the study as a row: strategy, seed, epochs, updates per experience (the mean of the
    run's logged steps per experience), mean learning accuracy, ACA, forgetting (percent), learning
    accuracy of every experience (``la_e1`` ...), train time (s)."""
    steps = res.steps
    updates = float(steps.groupby("experience").size().mean()) if not steps.empty else float("nan")
    learning = 100 * metrics.learning_accuracies(res.acc)
    summary = res.summary()
    return {"strategy": label, "seed": seed, "epochs": epochs, "updates_per_experience": updates,
            "learning_accuracy": summary["learning_accuracy"], "aca": summary["aca"],
            "forgetting": summary["forgetting"], "train_time_s": summary["train_time_s"],
            **{f"la_e{j + 1}": float(v) for j, v in enumerate(learning)}}


def run_convergence(cfg: ConvergenceConfig, out: str | os.PathLike | None = None,
                    root: str | os.PathLike | None = None, progress: bool | None = None,
                    reuse_other_code: bool = False) -> pd.DataFrame:
    """Train (or read from the results cache under ``root``) every run of the study; one row per run
    (:func:`study_row`). With ``out``, ``out/convergence.csv`` is rewritten after every run, so a
    study stopped half-way keeps what it measured. ``reuse_other_code``: see
    :func:`phn.sweep.run_configs`."""
    rows = []
    bar = tqdm(cfg.jobs(), desc="convergence runs", disable=progress is False, dynamic_ncols=True)
    for label, seed, epochs in bar:
        bar.set_postfix_str(f"{label} seed {seed} {epochs} epochs")
        done, _ = run_configs([cfg.run_config(label, seed, epochs)], root, progress=False,
                              reuse_other_code=reuse_other_code)
        rows.append(study_row(label, seed, epochs, next(iter(done.values()))))
        if out is not None:
            write_text(Path(out) / "convergence.csv", pd.DataFrame(rows).to_csv(index=False))
    return pd.DataFrame(rows)


def converged(short: float, long: float, tolerance: float = DEFAULT_TOLERANCE) -> bool:
    """The convergence rule: a run's mean learning accuracy ``short`` (percent) is within ``tolerance``
    points of the same run with twice the epochs (``long``)."""
    return bool(abs(long - short) <= tolerance)


def convergence_table(study: pd.DataFrame, tolerance: float = DEFAULT_TOLERANCE) -> pd.DataFrame:
    """The rule applied to every (strategy, seed, epochs) whose doubled run is in ``study``: columns
    strategy, seed, epochs, updates_per_experience, learning_accuracy, learning_accuracy_2x, gain
    (2x minus 1x, points), converged."""
    keyed = study.set_index(["strategy", "seed", "epochs"])
    rows = []
    for (label, seed, epochs), row in keyed.iterrows():
        if (label, seed, 2 * epochs) not in keyed.index:
            continue
        longer = keyed.loc[(label, seed, 2 * epochs), "learning_accuracy"]
        rows.append({"strategy": label, "seed": seed, "epochs": epochs,
                     "updates_per_experience": row.updates_per_experience,
                     "learning_accuracy": row.learning_accuracy, "learning_accuracy_2x": longer,
                     "gain": longer - row.learning_accuracy,
                     "converged": converged(row.learning_accuracy, longer, tolerance)})
    columns = ["strategy", "seed", "epochs", "updates_per_experience", "learning_accuracy", "learning_accuracy_2x",
               "gain", "converged"]
    return pd.DataFrame(rows, columns=columns)


def epochs_to_converge(table: pd.DataFrame) -> pd.DataFrame:
    """Per strategy: the fewest epochs (and updates per experience) at which every seed of
    :func:`convergence_table` has converged, or NaN when no checked length has (``not converged
    within`` the longest checked run). Columns strategy, epochs, updates_per_experience, checked_up_to."""
    rows = []
    for label, group in table.groupby("strategy", sort=False):
        by_epochs = group.groupby("epochs")
        ok = by_epochs.converged.all()
        ok = ok[ok]
        epochs = float(ok.index.min()) if len(ok) else np.nan
        updates = float(by_epochs.updates_per_experience.mean().get(epochs, np.nan)) if len(ok) else np.nan
        rows.append({"strategy": label, "epochs": epochs, "updates_per_experience": updates,
                     "checked_up_to": int(group.epochs.max())})
    return pd.DataFrame(rows, columns=["strategy", "epochs", "updates_per_experience", "checked_up_to"])


def load_study(folder: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, object]]:
    """A recorded study: ``folder/convergence.csv`` and its ``convergence.json`` (command, machine,
    config; empty while the study has not finished)."""
    folder = Path(folder)
    meta_path = folder / "convergence.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    return pd.read_csv(folder / "convergence.csv"), meta


def load_studies(folders: Sequence[str | os.PathLike]) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    """Several recorded studies (:func:`load_study`) as one: their runs concatenated (a run recorded
    twice, same strategy, seed and epochs, is taken from the later folder) and their metadata in order
    (a folder without ``convergence.csv`` contributes no runs and a command saying so)."""
    parts, metas = [], []
    for folder in folders:
        if not (Path(folder) / "convergence.csv").is_file():  # named but not recorded: shown, not read
            metas.append({"command": f"(not recorded yet: {Path(folder).name})"})
            continue
        study, meta = load_study(folder)
        parts.append(study)
        metas.append(meta)
    study = pd.concat(parts, ignore_index=True).drop_duplicates(["strategy", "seed", "epochs"], keep="last")
    return study.reset_index(drop=True), metas


# the study's sizes that must equal a chapter's for its check to apply (test images only sample the
# accuracy; they do not change training)
CHECKED_SIZES = ("stream", "max_per_class", "batch_size", "lr")


def profile_check(table: pd.DataFrame, study: pd.DataFrame, sizes: StreamSizes, chance: float,
                  study_sizes: dict[str, object] | Sequence[dict[str, object]] | None = None) -> pd.DataFrame:
    """For every strategy of the study: has it converged at ``sizes.epochs`` = E (every checked seed),
    and does it learn at least :data:`CLEAR_MARGIN` points above ``chance``?

    Per seed the check is the rule's pair (E, 2E) where the study has the run with 2E epochs. Where it
    has only the last doubling (E/2, E), that pair decides only one way: a run that gained at most the
    tolerance from E/2 to E epochs is on its plateau at E (converged); one that gained more may or may
    not have converged at E (undecided). Columns strategy, learning_accuracy (mean over the checked
    seeds, at E epochs), gain (mean over those seeds, over the pair checked), seeds, pairs (e.g.
    ``"8 → 16"``), converged (True: every checked seed converged; False: one did not; None:
    undecided), above_chance, status: ``"converged"``, ``"not converged at this profile"``,
    ``"undecided"`` (no seed against, one undecided), ``"not clearly above chance"`` or ``"not
    checked"`` (the study has neither pair at E, or ``study_sizes``, the study's config or configs,
    differ from ``sizes`` in any of :data:`CHECKED_SIZES`). Only ``"converged"`` is judged."""
    metas = [study_sizes] if isinstance(study_sizes, dict) else list(study_sizes or [])
    same = all(meta.get(k) == getattr(sizes, k) for meta in metas for k in CHECKED_SIZES)
    epochs = sizes.epochs
    rows = []
    columns = ["strategy", "learning_accuracy", "gain", "seeds", "pairs", "converged", "above_chance", "status"]
    for label in dict.fromkeys(study.strategy):
        checks = []  # (seed, accuracy at E, gain, converged: True / False / None undecided, pair)
        mine = table[table.strategy == label] if same else table.iloc[:0]
        for seed in dict.fromkeys(mine.seed):
            runs = mine[mine.seed == seed].set_index("epochs")
            if epochs in runs.index:
                row = runs.loc[epochs]
                checks.append((seed, row.learning_accuracy, row.gain, bool(row.converged), f"{epochs} → {2 * epochs}"))
            elif epochs % 2 == 0 and epochs // 2 in runs.index:
                row = runs.loc[epochs // 2]
                checks.append((seed, row.learning_accuracy_2x, row.gain, True if row.converged else None,
                               f"{epochs // 2} → {epochs}"))
        if not checks:
            rows.append({"strategy": label, "learning_accuracy": np.nan, "gain": np.nan, "seeds": "", "pairs": "",
                         "converged": None, "above_chance": None, "status": "not checked"})
            continue
        learning = float(np.mean([c[1] for c in checks]))
        outcomes = [c[3] for c in checks]
        ok = False if False in outcomes else (None if None in outcomes else True)
        clear = learning >= chance + CLEAR_MARGIN
        status = ("not converged at this profile" if ok is False else "undecided" if ok is None
                  else "converged" if clear else "not clearly above chance")
        rows.append({"strategy": label, "learning_accuracy": learning, "gain": float(np.mean([c[2] for c in checks])),
                     "seeds": ", ".join(str(c[0]) for c in checks), "pairs": ", ".join(dict.fromkeys(c[4] for c in checks)),
                     "converged": ok, "above_chance": clear, "status": status})
    return pd.DataFrame(rows, columns=columns)


def half_length_check(long: pd.DataFrame, short: pd.DataFrame, by: Sequence[str], chance: float,
                      tolerance: float = DEFAULT_TOLERANCE) -> pd.DataFrame:
    """A chapter's own convergence check: its runs of E epochs (``long``, every seed) against the same
    runs with E/2 epochs on one seed (``short``): the last doubling, as :func:`profile_check` falls
    back on, and like it deciding one way only. A group of ``by`` (e.g. model and stream) has
    converged when every checked seed gained at most ``tolerance`` points from E/2 to E
    (:func:`converged`: on its plateau at E); a group that gained more may or may not have converged
    at E (undecided: only a run with 2E epochs could tell), and its claims are not judged either. It
    learns clearly above chance when its mean over ``long``'s seeds is at least ``chance`` +
    :data:`CLEAR_MARGIN`.

    Args:
        long, short: columns ``by``, ``seed`` and ``learning_accuracy`` (percent).
        by: the columns naming one strategy's runs.
        chance: chance accuracy (percent).

    Returns:
        One row per group of ``long``: ``by``, learning_accuracy (mean over ``long``'s seeds),
        learning_accuracy_half (mean over the checked seeds), gain (mean, E/2 to E, checked seeds),
        seeds (checked), converged (True; None: undecided or not checked), above_chance, status as
        :func:`profile_check` (``"converged"``, ``"undecided"``, ``"not clearly above chance"``, ``"not
        checked"``).
    """
    keys = [*by, "seed"]
    joined = long.merge(short[[*keys, "learning_accuracy"]], on=keys, how="left", suffixes=("", "_half"))
    rows = []
    for group, part in joined.groupby(list(by), sort=False):
        group = group if isinstance(group, tuple) else (group,)
        checked = part.dropna(subset=["learning_accuracy_half"])
        learning = float(part.learning_accuracy.mean())
        clear = learning >= chance + CLEAR_MARGIN
        if checked.empty:
            ok, status = None, "not checked"
        else:
            ok = True if all(converged(h, f, tolerance) for h, f in zip(checked.learning_accuracy_half,
                                                                        checked.learning_accuracy, strict=True)) else None
            status = "converged" if ok and clear else ("undecided" if not ok else "not clearly above chance")
        rows.append({**dict(zip(by, group, strict=True)), "learning_accuracy": learning,
                     "learning_accuracy_half": float(checked.learning_accuracy_half.mean()) if len(checked) else np.nan,
                     "gain": float((checked.learning_accuracy - checked.learning_accuracy_half).mean())
                     if len(checked) else np.nan,
                     "seeds": ", ".join(str(s) for s in checked.seed), "converged": ok, "above_chance": clear,
                     "status": status})
    return pd.DataFrame(rows, columns=[*by, "learning_accuracy", "learning_accuracy_half", "gain", "seeds", "converged",
                                       "above_chance", "status"])


@dataclass
class ChapterGate:
    """A chapter's convergence gate from its own runs (:func:`chapter_gate`).

    Attributes:
        check: :func:`half_length_check`'s rows.
        converged: key -> converged in every checked group (False: undecided in one, so not judged;
            None: nothing checked, e.g. one epoch).
        below_chance: the keys with a group of ``clear_by`` whose mean learning accuracy over the
            chapter's seeds is below chance + :data:`CLEAR_MARGIN`; their claims are not judged.
    """

    check: pd.DataFrame
    converged: dict[str, bool] | None
    below_chance: list[str]


def chapter_gate(long: pd.DataFrame, short: pd.DataFrame | None, by: Sequence[str], key: str, chance: float,
                 clear_by: Sequence[str] | None = None, tolerance: float = DEFAULT_TOLERANCE) -> ChapterGate:
    """The freeze and noise chapters' gate: :func:`half_length_check` of ``long`` (E epochs, every seed)
    against ``short`` (E/2 epochs, one seed; None when E is 1 and nothing shorter exists), reduced to
    what :func:`phn.ledger.judge` takes per ``key`` (the column naming a strategy, e.g. ``"model"``).

    Args:
        long, short: columns ``by``, ``seed`` and ``learning_accuracy`` (percent).
        by: the columns naming one group of runs (``key`` among them).
        clear_by: the groups whose mean must be clearly above chance (default ``by``; the freeze chapter
            passes ``[key]``: a strategy's mean over its whole grid, since freezing deep is allowed to
            fail on one pair; that failure is the chapter's claim).

    Example:
        >>> long = pd.DataFrame({"model": ["A", "B"], "seed": [0, 0], "learning_accuracy": [90.0, 60.0]})
        >>> short = long.assign(learning_accuracy=[89.0, 50.0])
        >>> g = chapter_gate(long, short, ["model"], "model", chance=50.0)
        >>> g.converged, g.below_chance
        ({'A': True, 'B': False}, ['B'])
    """
    check = half_length_check(long, long.iloc[:0] if short is None else short, by, chance, tolerance)
    checked = check[check.status != "not checked"]
    converged = ({str(k): bool(g.converged.eq(True).all()) for k, g in checked.groupby(key, sort=False)}
                 if len(checked) else None)
    means = long.groupby(list(clear_by or by), sort=False).learning_accuracy.mean().reset_index()
    below = sorted({str(k) for k in means.loc[means.learning_accuracy < chance + CLEAR_MARGIN, key]})
    return ChapterGate(check, converged, below)


def half_length(epochs: int) -> int:
    """The epochs of a chapter's convergence check: E/2 (E even; at least 1)."""
    return max(epochs // 2, 1)


# The recorded studies, in the order they were run (benchmarks/results/*/README.md gives each command); a
# later folder's run of the same strategy, seed and epochs replaces an earlier one's (convergence-baselines:
# Naive and LR-k again after their training changed on 2026-12-04)
RECORDED_STUDIES = ("benchmarks/results/convergence", "benchmarks/results/convergence-seed101",
                    "benchmarks/results/convergence-16", "benchmarks/results/convergence-seed101-16",
                    "benchmarks/results/convergence-baselines")


@dataclass
class RecordedCheck:
    """A chapter's convergence check rendered from the recorded studies (:func:`recorded_check`).

    Attributes:
        table: :func:`profile_check`'s rows.
        converged: strategy -> converged at the chapter's epochs on every checked seed (False: not
            converged or undecided; its claims are not judged); strategies the study has no pair for
            are absent (not checked). Learning clearly above
            chance is checked by each chapter on its own runs.
        commands: the command of every recorded study, in order.
    """

    table: pd.DataFrame
    converged: dict[str, bool]
    commands: list[str]


def recorded_check(sizes: StreamSizes, chance: float, folders: Sequence[str] = RECORDED_STUDIES) -> RecordedCheck:
    """:func:`profile_check` of ``sizes`` against the recorded studies (``folders`` relative to the
    repository root), for a chapter's "have the strategies converged?" section."""
    study, metas = load_studies([REPO_DIR / folder for folder in folders])
    table = profile_check(convergence_table(study), study, sizes, chance, [m["config"] for m in metas if m.get("config")])
    converged = {row.strategy: row.converged is True for row in table.itertuples() if row.status != "not checked"}
    return RecordedCheck(table, converged, [str(m.get("command", "(not finished)")) for m in metas])


def machine_record(prog: str, argv: Sequence[str], seconds: float = 0.0) -> dict[str, object]:
    """What a recorded study says of itself: its command (``prog`` and ``argv``), seconds, date, CPU,
    torch threads and version, and the commit it ran at."""
    import subprocess

    import torch

    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
    return {"command": f"{prog} " + " ".join(argv), "seconds": round(seconds, 1),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "commit": commit}


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m phn.experiments.convergence``: run the study and write its table."""
    argv = list(sys.argv[1:] if argv is None else argv)
    defaults = ConvergenceConfig()
    parser = argparse.ArgumentParser(prog="python -m phn.experiments.convergence", description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", nargs="+", default=list(defaults.strategies))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(defaults.seeds))
    parser.add_argument("--epochs", nargs="+", type=int, default=list(defaults.epochs_ladder))
    parser.add_argument("--max-per-class", type=int, default=defaults.max_per_class)
    parser.add_argument("--max-per-class-test", default="all", help="test images per class (default: all)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--stream", default=defaults.stream)
    parser.add_argument("--out", default="runs/convergence")
    parser.add_argument("--reuse-other-code", action="store_true",
                        help="count finished runs of other phn code as finished (only where the training path is unchanged)")
    args = parser.parse_args(argv)
    test_cap = args.max_per_class_test if args.max_per_class_test == "all" else int(args.max_per_class_test)
    try:
        cfg = ConvergenceConfig(stream=args.stream, strategies=tuple(args.strategies), seeds=tuple(args.seeds),
                                epochs_ladder=tuple(args.epochs), max_per_class=args.max_per_class,
                                max_per_class_test=test_cap, batch_size=args.batch_size)
    except ConfigError as err:
        raise SystemExit(f"convergence: {err}") from None
    tic = time.perf_counter()
    meta_path = Path(args.out) / "convergence.json"
    meta = {**machine_record("python -m phn.experiments.convergence", argv), "config": dataclasses.asdict(cfg), "finished": False}
    write_text(meta_path, json.dumps(meta, indent=1) + "\n")  # a study stopped half-way still says what it ran
    study = run_convergence(cfg, out=args.out, reuse_other_code=args.reuse_other_code)
    meta.update(seconds=round(time.perf_counter() - tic, 1), finished=True)
    write_text(meta_path, json.dumps(meta, indent=1) + "\n")
    print(convergence_table(study).round(1).to_string(index=False))


if __name__ == "__main__":
    main()


__all__ = [
    "CHECKED_SIZES", "CLEAR_MARGIN", "DEFAULT_TOLERANCE", "RECORDED_STUDIES", "TUNING_SEEDS", "ChapterGate",
    "ConvergenceConfig", "RecordedCheck", "chapter_gate", "converged", "convergence_table", "epochs_to_converge",
    "half_length", "half_length_check", "load_studies", "machine_record", "load_study", "profile_check", "recorded_check",
    "run_convergence", "study_row",
]
