"""Throughput of ``PartialHN.train_step`` on random data (images per second).

Measures steps of a later experience: ``--old-tasks`` experiences (default 1) are trained for one
step each and recorded first, so the prefix is frozen and the regulariser (Eq. 7, over
min(old_tasks, 20) earlier tasks per step) and the look-ahead step are active.

Example:
    .venv/bin/python benchmarks/engine_speed.py --freeze-depth 4 2 0 --batch-size 64 128 --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch

from phn.config import HyperConfig, ModelConfig
from phn.strategies.partial_hn import PartialHN


def measure(
    freeze_depth: int, batch_size: int, steps: int, lookahead: str, device: str = "cpu", amp: bool = False,
    channels_last: bool = False, old_tasks: int = 1, warmup: int = 3, hw: int = 32, num_classes: int = 10,
) -> float:
    """Images per second of experience-2 training steps (after ``warmup`` untimed steps)."""
    strategy = PartialHN(
        num_tasks=old_tasks + 1, num_classes=num_classes, model_cfg=ModelConfig(freeze_depth=freeze_depth),
        hyper_cfg=HyperConfig(lookahead=lookahead), device=device, amp=amp, channels_last=channels_last,
    )
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 3, hw, hw, generator=gen).to(device)
    y = torch.randint(0, num_classes, (batch_size,), generator=gen).to(device)
    for task in range(old_tasks):
        strategy.begin_experience(task)
        strategy.train_step(x, y, task)
        strategy.end_experience(task)  # freezes the prefix after the first, records H(e_j)
    strategy.begin_experience(old_tasks)
    for _ in range(warmup):
        strategy.train_step(x, y, old_tasks)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        strategy.train_step(x, y, old_tasks)  # .item() in train_step synchronises every step
    return steps * batch_size / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--freeze-depth", type=int, nargs="+", default=[4, 2, 0])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lookahead", choices=["none", "first", "second"], default="first")
    parser.add_argument("--old-tasks", type=int, default=1, help="experiences recorded before measuring")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast of the target (CUDA only)")
    parser.add_argument("--nchw", action="store_true", help="contiguous (NCHW) activations instead of channels-last")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"# PartialHN.train_step, experience 2, lookahead={args.lookahead}, device={args.device}, "
          f"threads={torch.get_num_threads()}, amp={args.amp}, channels_last={not args.nchw}, "
          f"old_tasks={args.old_tasks}, 32x32")
    print(f"| {'model':6} | {'batch':>5} | {'img/s':>8} |")
    print(f"|{'-' * 8}|{'-' * 7}|{'-' * 10}|")
    for k in args.freeze_depth:
        for bs in args.batch_size:
            ips = measure(k, bs, args.steps, args.lookahead, args.device, args.amp, not args.nchw, args.old_tasks)
            print(f"| {'HN-F' if k == 0 else f'HN-{k}':6} | {bs:>5} | {ips:>8.0f} |", flush=True)


if __name__ == "__main__":
    main()
