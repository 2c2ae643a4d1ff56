"""What a run produces, and how it is written to and read from its run directory.

A run directory holds::

    config.json        every setting of the run, library versions, seed
    metrics.json       ACA, learning accuracy, forgetting, times, memory, parameter counts
    accuracy.csv       tidy accuracy matrix (trained_on, evaluated_on, accuracy)
    steps.csv          per-step logs (experience, epoch, step, loss, ...), when logged
    diagnostics.csv    per-experience rows a strategy reports (e.g. HN output drift), when any
    curves.csv         accuracy of seen experiences during training (``train.eval_every``), when on
    checkpoint.pt      state after the last finished experience or epoch (for resume)
    complete.json      written last: the run's key and the sha256 of metrics.json (:mod:`phn.rundir`)

Every file is written atomically (temporary file + rename), so a crash never leaves half a file, and
with the permissions the process's umask allows (as ``open`` would). Results count only with their
``complete.json``: :meth:`Results.load` refuses a directory without it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phn import metrics


@dataclass
class Results:
    """Outcome of running one strategy over one stream.

    Attributes:
        acc: (N, N) accuracy matrix in [0, 1]; ``acc[i, j]`` after training i, on j; NaN for j > i.
        train_time: (N,) wall-clock seconds spent training each experience.
        eval_time: (N,) seconds spent evaluating after each experience.
        peak_memory: (N,) peak memory in bytes while training each experience (CUDA max allocated
            on GPU, process peak RSS on CPU).
        parameter_count: learnable parameters of the strategy (the hypernetwork for HN).
        stored_floats: floats kept between experiences (replay buffer, recorded HN outputs, ...).
        steps: per-step logs, one row per optimisation step.
        config: the run's configuration as plain data.
        acc_by_order: {evaluation order: (N, N) accuracy matrix} for every order the run was
            evaluated under (``acc`` is the one of ``train.eval_order``); empty if only ``acc``.
        diagnostics: per-experience rows returned by the strategy's ``end_experience``.
        warnings: what the run noticed but did not stop for (e.g. explosive losses, see
            :data:`phn.train.EXPLOSIVE_FACTOR`); saved in metrics.json.
        checkpoint_time: (N,) seconds spent writing checkpoints during each experience (not part of
            ``train_time``).
        cached: True when the results were read from a finished earlier run instead of computed now
            (their times are that run's); not saved.
        curves: accuracy over time (``TrainConfig.eval_every``), one row per evaluation: columns
            ``trained_experience``, ``epoch``, ``step`` (within the experience), ``global_step``,
            ``evaluated_experience``, ``accuracy`` (in [0, 1]). Each experience contributes a point
            before its first step, every ``eval_every`` steps or epochs, and its end-of-experience
            evaluation (the accuracy matrix row, after ``end_experience``).
    """

    acc: np.ndarray
    train_time: np.ndarray
    eval_time: np.ndarray
    peak_memory: np.ndarray
    parameter_count: int = 0
    stored_floats: int = 0
    steps: pd.DataFrame = field(default_factory=pd.DataFrame)
    config: dict[str, Any] = field(default_factory=dict)
    acc_by_order: dict[str, np.ndarray] = field(default_factory=dict)
    diagnostics: pd.DataFrame = field(default_factory=pd.DataFrame)
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    warnings: list[str] = field(default_factory=list)
    checkpoint_time: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cached: bool = False

    @property
    def num_experiences(self) -> int:
        return int(self.acc.shape[0])

    def summary(self) -> dict[str, float]:
        """ACA, learning accuracy, forgetting (percent), time (s) and memory (MiB)."""
        return {
            **metrics.summary(self.acc),
            "train_time_s": float(np.sum(self.train_time)),
            "peak_memory_mib": float(np.max(self.peak_memory)) / 2**20 if len(self.peak_memory) else 0.0,
            "parameters": int(self.parameter_count),
            "stored_floats": int(self.stored_floats),
        }

    def summary_by_order(self) -> pd.DataFrame:
        """One row per evaluation order: ``order``, ACA, learning accuracy and forgetting (percent)."""
        matrices = self.acc_by_order or {str(self.config.get("train", {}).get("eval_order", "")): self.acc}
        return pd.DataFrame([{"order": order, **metrics.summary(acc)} for order, acc in matrices.items()])

    def per_experience(self) -> pd.DataFrame:
        """One row per experience: learning accuracy, final accuracy, forgetting, time, memory."""
        return pd.DataFrame({
            "experience": np.arange(self.num_experiences),
            "learning_accuracy": metrics.learning_accuracies(self.acc),
            "final_accuracy": metrics.final_accuracies(self.acc),
            "forgetting": metrics.forgettings(self.acc),
            "train_time_s": self.train_time,
            "peak_memory_mib": np.asarray(self.peak_memory, dtype=float) / 2**20,
        })

    # ---- persistence ----------------------------------------------------------------------------
    def save(self, run_dir: str | os.PathLike) -> None:
        """Write config.json, metrics.json and the tables atomically into ``run_dir``, then the
        completion marker (``complete.json``) last."""
        from phn import rundir

        run_dir = Path(run_dir)
        (run_dir / rundir.MARKER).unlink(missing_ok=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", self.config)
        write_text(run_dir / "accuracy.csv", metrics.accuracy_table(self.acc).to_csv(index=False))
        for name, table in (("steps.csv", self.steps), ("diagnostics.csv", self.diagnostics),
                            ("curves.csv", self.curves)):
            if table.empty:  # never leave an earlier run's file beside these results
                (run_dir / name).unlink(missing_ok=True)
            else:
                write_text(run_dir / name, table.to_csv(index=False))
        write_json(run_dir / "metrics.json", {
            "summary": self.summary(),
            "num_experiences": self.num_experiences,
            "acc": _nan_to_none(self.acc.tolist()),
            "acc_by_order": {order: _nan_to_none(acc.tolist()) for order, acc in self.acc_by_order.items()},
            "train_time": list(map(float, self.train_time)),
            "eval_time": list(map(float, self.eval_time)),
            "peak_memory": list(map(float, self.peak_memory)),
            "parameter_count": int(self.parameter_count),
            "stored_floats": int(self.stored_floats),
            "warnings": list(self.warnings),
            "checkpoint_time": list(map(float, self.checkpoint_time)),
        })
        rundir.mark_complete(run_dir, self.config)

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> Results:
        """Read what :meth:`save` wrote.

        Raises:
            phn.rundir.CorruptRunError: ``run_dir`` holds no finished run (no ``complete.json``, or
                ``metrics.json`` altered since), or a file is unreadable (the message names it).
        """
        from phn import rundir

        run_dir = Path(run_dir)
        rundir.check_complete(run_dir)
        data = rundir.read_json(run_dir / "metrics.json")
        config_path = run_dir / "config.json"
        return cls(
            acc=np.array(data["acc"], dtype=float),
            train_time=np.array(data["train_time"]),
            eval_time=np.array(data["eval_time"]),
            peak_memory=np.array(data["peak_memory"]),
            parameter_count=data["parameter_count"],
            stored_floats=data["stored_floats"],
            steps=_read_csv(run_dir / "steps.csv"),
            config=rundir.read_json(config_path) if config_path.exists() else {},
            acc_by_order={order: np.array(acc, dtype=float) for order, acc in data.get("acc_by_order", {}).items()},
            diagnostics=_read_csv(run_dir / "diagnostics.csv"), curves=_read_csv(run_dir / "curves.csv"),
            warnings=list(data.get("warnings", [])), checkpoint_time=np.array(data.get("checkpoint_time", [])),
        )


def _read_csv(path: Path) -> pd.DataFrame:
    from phn.rundir import CorruptRunError

    if not path.exists():
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as error:  # pandas' parser errors are ValueErrors
        raise CorruptRunError(f"{path} is unreadable ({type(error).__name__}: {error})") from None


def _nan_to_none(rows: list[list[float]]) -> list[list[float | None]]:
    return [[None if v != v else v for v in row] for row in rows]


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; results are for reading
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
