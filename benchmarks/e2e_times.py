"""Per-experience times of finished runs as one CSV (the GPU session's end-to-end Split-CIFAR100 runs).

    python -m benchmarks.e2e_times OUT.csv RUN_DIR [RUN_DIR ...]

One row per (run, experience): ``model`` (HN-k), ``device``, ``epochs``, ``experience``,
``train_time_s``, ``eval_time_s``, ``peak_memory_mib``, ``steps`` (training steps of the experience)
and the ``commit`` and ``torch`` the run recorded. :func:`extrapolate` scales them to other epochs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd


def table(run_dirs: list[Path]) -> pd.DataFrame:
    rows = []
    for run_dir in run_dirs:
        config = json.loads((run_dir / "config.json").read_text())
        metrics = json.loads((run_dir / "metrics.json").read_text())
        steps = pd.read_csv(run_dir / "steps.csv") if (run_dir / "steps.csv").exists() else None
        k = config["model"]["freeze_depth"]
        for i, seconds in enumerate(metrics["train_time"]):
            rows.append({"model": "HN-F" if k == 0 else f"HN-{k}", "stream": config["stream"]["name"],
                         "device": config["train"]["device"], "amp": config["train"]["amp"],
                         "batch_size": config["train"]["batch_size"], "epochs": config["train"]["epochs"],
                         "experience": i, "train_time_s": seconds, "eval_time_s": metrics["eval_time"][i],
                         "peak_memory_mib": metrics["peak_memory"][i] / 2**20,
                         "steps": int((steps.experience == i).sum()) if steps is not None else None,
                         "commit": config["code"]["git_commit"], "torch": config["versions"]["torch"]})
    return pd.DataFrame(rows)


def extrapolate(times: pd.DataFrame, epochs: int = 100) -> pd.DataFrame:
    """Training time of each model at ``epochs`` epochs per experience: each experience's measured time
    per epoch x ``epochs``. An upper bound: the first experience's one-off start-up (cuDNN's algorithm
    search, allocations) is scaled with the rest."""
    out = times.groupby("model", sort=False).agg(measured_epochs=("epochs", "first"),
                                                 measured_s=("train_time_s", "sum"),
                                                 steps=("steps", "sum"))
    per_epoch = (times.train_time_s / times.epochs).groupby(times.model, sort=False).sum()
    out["step_ms"] = 1e3 * out.measured_s / out.steps
    out[f"predicted_{epochs}_epochs_min"] = per_epoch * epochs / 60
    return out.reset_index()


if __name__ == "__main__":
    table([Path(p) for p in sys.argv[2:]]).to_csv(sys.argv[1], index=False)
    print(f"wrote {sys.argv[1]}")
