"""CPU and CUDA compute the same thing: every strategy, trained on the same batches from the same seed.

For Naive, EWC, LR-4 and HN-4 / HN-2 / HN-F, three experiences of the tiny stream (:mod:`tests.tiny`,
16 x 16 images, two epochs of two batches of 8 each) are trained on the CPU and on a CUDA device, batch by
batch in one fixed order, in float64 (``amp=False``; parameters, data and every tensor the strategies
create), and compared:

* every training step's loss (the look-ahead, regulariser, EWC penalty and replay are part of the
  loss from experience 2 on): the largest relative difference, and that of the first step;
* the logits of every experience's test images after the last experience: ||cuda - cpu|| / ||cpu||.

float64, because in float32 the two devices' different summation orders (about 1e-7 per step) are
amplified by training: Adam divides by the root of tiny second moments, so after 24 steps of 32 x 32 images float32
losses and logits differ by several per cent with no error anywhere (measured on an H200: largest
loss difference 0.39, relative, on losses near zero). In float64 the same rounding differences stay
near 1e-12, so a difference above ``--tolerance`` (1e-6) is a real one: a tensor on the wrong device,
a random draw from another generator, a missing synchronisation. Prints a table; exits 1 if a
difference exceeds the tolerance.

    python -m benchmarks.cuda_check            # on a machine with a GPU
    python -m benchmarks.cuda_check --device cpu   # the check itself, CPU against CPU (differences 0)
"""

from __future__ import annotations

import argparse
import sys

import torch

from benchmarks.synthetic_cifar import _load
from phn.config import ModelConfig, StrategyConfig
from phn.strategies import make_strategy

tiny_stream = _load("tests/tiny.py").tiny_stream

CASES = [("naive", 4), ("ewc", 4), ("lr", 4), ("hn", 4), ("hn", 2), ("hn", 0)]
BATCH = 8


def trace(name: str, freeze_depth: int, device: torch.device) -> tuple[list[float], torch.Tensor]:
    """(loss of every training step, CPU logits of all test images after the last experience), float64."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return _trace(name, freeze_depth, device)
    finally:
        torch.set_default_dtype(default)


def _trace(name: str, freeze_depth: int, device: torch.device) -> tuple[list[float], torch.Tensor]:
    torch.manual_seed(0)
    stream = tiny_stream(num_experiences=3, classes_per_experience=2, per_class=8, size=16)
    strategy = make_strategy(StrategyConfig(name=name), num_tasks=len(stream), num_classes=2,
                             model_cfg=ModelConfig(freeze_depth=freeze_depth), device=device, amp=False,
                             batch_size=BATCH, seed=0)
    losses = []
    for exp in stream:
        order = torch.randperm(len(exp.train), generator=torch.Generator().manual_seed(exp.task_id))
        strategy.begin_experience(exp)
        for _epoch in range(2):
            for start in range(0, len(order), BATCH):
                index = order[start:start + BATCH]
                x, y = exp.train.images[index].to(device, torch.float64), exp.train.targets[index].to(device)
                losses.append(float(strategy.train_step(x, y, exp.task_id)["loss"]))
        strategy.end_experience(exp)
    with torch.no_grad():
        logits = torch.cat([strategy.predict(exp.test.images.to(device, torch.float64), exp.task_id).cpu()
                            for exp in stream])
    return losses, logits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cuda_check", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tolerance", type=float, default=1e-6)
    parser.add_argument("--other-threads", type=int,
                        help="torch threads for the --device run (with --device cpu: the same device, another "
                             "summation order; shows how far rounding alone carries)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("cuda_check: no CUDA device", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    threads = f" ({args.other_threads} threads against {torch.get_num_threads()})" if args.other_threads else ""
    print(f"{name}{threads} against cpu, float64, torch {torch.__version__}")
    worst = 0.0
    print(f"{'strategy':<10} {'steps':>5} {'first loss rel diff':>19} {'max loss rel diff':>18} {'logits rel diff':>16}")
    for name, k in CASES:
        cpu_losses, cpu_logits = trace(name, k, torch.device("cpu"))
        threads = torch.get_num_threads()
        torch.set_num_threads(args.other_threads or threads)
        try:
            gpu_losses, gpu_logits = trace(name, k, device)
        finally:
            torch.set_num_threads(threads)
        diffs = [abs(a - b) / max(abs(a), 1e-12) for a, b in zip(cpu_losses, gpu_losses, strict=True)]
        loss_diff = max(diffs)
        logit_diff = float((gpu_logits - cpu_logits).norm() / cpu_logits.norm())
        worst = max(worst, loss_diff, logit_diff)
        label = {"hn": f"HN-{'F' if k == 0 else k}", "lr": f"LR-{k}"}.get(name, name)
        print(f"{label:<10} {len(cpu_losses):>5} {diffs[0]:>19.2e} {loss_diff:>18.2e} {logit_diff:>16.2e}")
    ok = worst <= args.tolerance
    print(f"worst relative difference {worst:.2e}: {'OK' if ok else 'ABOVE'} tolerance {args.tolerance:g}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
