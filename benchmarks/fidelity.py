"""Fidelity benchmark: phn's HN-k against the authors' release on the fixed Split-FashionMNIST stream.

Trains HN-4, HN-2 and Naive on several seeds and HN-F on one, in phn's default mode and in the
authors' mode (batch-statistics BN, evaluated under three test orders from one trained model), and
prints mean ± std of ACA, learning accuracy and forgetting beside the authors' numbers, plus how far
old tasks' generated weights drifted against the accuracy they lost (``phn.experiments.fidelity``).
Every run is cached in its run directory under ``--out``: rerunning the command after an
interruption trains only what is missing.

Example (the full check; about 1.5 h on the 2-core CPU, both initialisations):
    .venv/bin/python benchmarks/fidelity.py --seeds 0 1 2 --inits pytorch kaiming --out runs/fidelity
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import torch

from phn.experiments.fidelity import (
    EPOCHS, FIXED_STREAM, MODES, STRATEGIES, data_path_comparison, drift_table, fidelity_plan, fidelity_table,
    run_fidelity,
)
from phn.machine import plain_images_per_second
from phn.provenance import code_provenance
from phn.results import write_text


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--single-seed", nargs="*", default=["HN-F"], help="strategies run on the first seed only")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--inits", nargs="+", default=["pytorch"], choices=["pytorch", "kaiming"],
                        help="hypernetwork head initialisations to compare")
    parser.add_argument("--data-paths", nargs="+", default=["device"], choices=["device", "loader"],
                        help="data paths to compare (device: phn's default; loader: a torch DataLoader)")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--max-per-class", type=int, default=FIXED_STREAM["max_per_class"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="runs/fidelity", help="run directories and the tables (CSV, Markdown)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    meta = {"command": "python benchmarks/fidelity.py " + " ".join(argv),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commit": code_provenance()["git_commit"], "cpu": platform.processor() or platform.machine(),
            "threads": args.threads, "torch": torch.__version__,
            "plain_img_s": round(plain_images_per_second(threads=args.threads), 1), "finished": False}
    plan = fidelity_plan(args.strategies, args.seeds, args.modes, args.inits, args.single_seed,
                         data_paths=args.data_paths, epochs=args.epochs, max_per_class=args.max_per_class)
    tic = time.perf_counter()
    runs, results = run_fidelity(plan, root=out, progress=args.progress)
    table, drift, paths = fidelity_table(runs), drift_table(results), data_path_comparison(runs)
    write_text(out / "runs.csv", runs.to_csv(index=False))
    if not paths.empty:
        write_text(out / "data_paths.csv", paths.to_csv(index=False))
    write_text(out / "table.csv", table.to_csv(index=False))
    write_text(out / "drift.csv", drift.to_csv(index=False))
    columns = ["strategy", "init", "mode", "data_path", "order", "seeds", "aca", "learning_accuracy", "forgetting",
               "aca_seeds", "max_forgetting", "authors_aca", "authors_aca_seeds", "aca_gap"]
    report = "\n\n".join([
        f"# Fidelity: {len(plan)} runs, {args.epochs} epochs, {args.max_per_class} images per class, "
        f"{args.threads} threads ({time.perf_counter() - tic:.0f} s)",
        table[columns].to_markdown(index=False),
        "## Old tasks' drift vs accuracy lost (mean over seeds, experiences and earlier tasks)",
        drift.to_markdown(index=False, floatfmt=".3g") if not drift.empty else "(no hypernetwork runs)",
    ] + ([] if paths.empty else [
        "## Device-resident data path vs DataLoader (device - loader, seed-paired; Welch and Brown-Forsythe p)",
        paths.to_markdown(index=False, floatfmt=".3g")]))
    write_text(out / "report.md", report + "\n")
    meta.update(seconds=round(time.perf_counter() - tic, 1), runs=len(plan), finished=True)
    write_text(out / "fidelity.json", json.dumps(meta, indent=1) + "\n")  # phn.experiments.fidelity.load_recorded
    print(report)


if __name__ == "__main__":
    main()
