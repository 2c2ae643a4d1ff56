"""What the run-directory safeguards cost: per-epoch checkpoints and the divergence checks.

Trains HN-4 on Split-FashionMNIST at the CLI's default size (every image, 5 experiences) for
``--epochs`` epochs per experience into a fresh run directory, so a checkpoint is written after every
epoch, and reports:

* checkpoint time (``metrics.json``: ``checkpoint_time``, not part of ``train_time``) per experience and
  as a share of the training time, and per checkpoint;
* the per-step cost of the loss check (``math.isfinite`` and the explosive-loss comparison on the
  logged loss, which every strategy already returns as a Python float), timed with ``timeit``, and
  of the parameter check run before every checkpoint (``torch.isfinite`` over every parameter),
  against the measured time of one training step.

Example::

    python benchmarks/reliability_overhead.py --epochs 2 --out runs/overhead
"""

from __future__ import annotations

import argparse
import math
import shutil
import timeit

import numpy as np

from phn.config import RunConfig, from_dict
from phn.train import _check_parameters, build_strategy, run_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-per-class", type=int, default=None, help="default: every image")
    parser.add_argument("--out", default="runs/overhead")
    args = parser.parse_args()
    cfg = from_dict(RunConfig, {"stream": {"name": "split-fashionmnist", "class_order": list(range(10)),
                                           "max_per_class": args.max_per_class},
                                "model": {"freeze_depth": 4}, "train": {"epochs": args.epochs, "device": "cpu"}})
    shutil.rmtree(args.out, ignore_errors=True)
    results = run_config(cfg, out_dir=args.out, progress=False)
    steps = len(results.steps)
    train, checkpoints = float(results.train_time.sum()), float(results.checkpoint_time.sum())
    count = len(results.train_time) * args.epochs  # one per epoch (the last of an experience: the experience's)
    step_s = train / steps
    print(f"HN-4, Split-FashionMNIST, {results.num_experiences} experiences x {args.epochs} epochs, {steps} steps")
    print(f"train time {train:.1f} s ({1e3 * step_s:.1f} ms per step); checkpoints {checkpoints:.2f} s in {count} "
          f"writes ({1e3 * checkpoints / count:.0f} ms each) = {100 * checkpoints / train:.2f} % of train time")
    print("checkpoint seconds per experience:", np.round(results.checkpoint_time, 3).tolist())

    loss, reference = 0.6931, 2.3
    check = timeit.Timer(lambda: (not math.isfinite(float(loss))) or loss > 100.0 * max(reference, 1e-8))
    per_check = min(check.repeat(5, 100_000)) / 100_000
    print(f"loss check: {1e9 * per_check:.0f} ns per step = {100 * per_check / step_s:.5f} % of a step")
    strategy = build_strategy(cfg, cfg.stream.build())
    params = timeit.Timer(lambda: _check_parameters(strategy, "", None))
    per_params = min(params.repeat(5, 20)) / 20
    print(f"parameter check: {1e3 * per_params:.2f} ms per checkpoint = "
          f"{100 * per_params * count / train:.4f} % of train time")


if __name__ == "__main__":
    main()
