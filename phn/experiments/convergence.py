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


def profile_check(table: pd.DataFrame, study: pd.DataFrame, sizes: StreamSizes, chance: float,
                  study_sizes: dict[str, object] | None = None) -> pd.DataFrame:
    """For every strategy of the study: has it converged at ``sizes.epochs`` (every checked seed),
    and does it learn at least :data:`CLEAR_MARGIN` points above ``chance``? Columns strategy,
    learning_accuracy (mean over seeds at those epochs), gain (mean, to twice the epochs), converged,
    above_chance, status: ``"converged"``, ``"not converged at this profile"``, ``"not clearly above
    chance"`` or ``"not checked"`` (the study has no run pair at these epochs, or ``study_sizes``, the
    study's config, differs from ``sizes`` in images per class, test images or batch size)."""
    same = study_sizes is None or all(study_sizes.get(k) == getattr(sizes, k)
                                      for k in ("stream", "max_per_class", "max_per_class_test", "batch_size", "lr"))
    rows = []
    for label in dict.fromkeys(study.strategy):
        part = table[(table.strategy == label) & (table.epochs == sizes.epochs)] if same else table.iloc[:0]
        if part.empty:
            rows.append({"strategy": label, "learning_accuracy": np.nan, "gain": np.nan, "converged": None,
                         "above_chance": None, "status": "not checked"})
            continue
        learning = float(part.learning_accuracy.mean())
        ok, clear = bool(part.converged.all()), learning >= chance + CLEAR_MARGIN
        status = "converged" if ok and clear else ("not converged at this profile" if not ok else "not clearly above chance")
        rows.append({"strategy": label, "learning_accuracy": learning, "gain": float(part.gain.mean()), "converged": ok,
                     "above_chance": clear, "status": status})
    return pd.DataFrame(rows, columns=["strategy", "learning_accuracy", "gain", "converged", "above_chance", "status"])


def _machine(argv: Sequence[str], seconds: float) -> dict[str, object]:
    import subprocess

    import torch

    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
    return {"command": "python -m phn.experiments.convergence " + " ".join(argv), "seconds": round(seconds, 1),
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
    meta = {**_machine(argv, 0.0), "config": dataclasses.asdict(cfg), "finished": False}
    write_text(meta_path, json.dumps(meta, indent=1) + "\n")  # a study stopped half-way still says what it ran
    study = run_convergence(cfg, out=args.out, reuse_other_code=args.reuse_other_code)
    meta.update(seconds=round(time.perf_counter() - tic, 1), finished=True)
    write_text(meta_path, json.dumps(meta, indent=1) + "\n")
    print(convergence_table(study).round(1).to_string(index=False))


if __name__ == "__main__":
    main()


__all__ = [
    "CLEAR_MARGIN", "DEFAULT_TOLERANCE", "TUNING_SEEDS", "ConvergenceConfig", "convergence_table", "converged",
    "epochs_to_converge", "load_study", "profile_check", "run_convergence", "study_row",
]
