"""Throughput of ``PartialHN.train_step`` and of the baselines' ``train_step`` on random data (images per second).

Measures steps of a later experience: ``--old-tasks`` experiences (default 1) are trained for one
step each and recorded first, so the prefix is frozen and the regulariser (Eq. 7, over
min(old_tasks, 20) earlier tasks per step) and the look-ahead step are active. ``--strategy`` times
the baselines the same way (Naive, EWC with its penalty, LR-k with a frozen prefix and a replay
buffer), by default without the speed levers (``channels_last=False, fused_adam=False``: the
baselines before 2026-12-04), with ``--levers`` with channels-last tensors and fused Adam (``Naive``'s
default since).

Examples:
    .venv/bin/python benchmarks/engine_speed.py --freeze-depth 4 2 0 --batch-size 64 128 --threads 2
    .venv/bin/python benchmarks/engine_speed.py --strategy Naive EWC LR-2 LR-3 --batch-size 32 --threads 2 [--levers]
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import torch

from phn.config import HyperConfig, ModelConfig
from phn.strategies.ewc import EWC
from phn.strategies.latent_replay import LatentReplay
from phn.strategies.naive import Naive
from phn.strategies.partial_hn import PartialHN

BASELINES = ("Naive", "EWC", "LR-1", "LR-2", "LR-3", "LR-4")


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


def build_baseline(name: str, num_tasks: int, num_classes: int, device: str = "cpu", channels_last: bool = False,
                   fused_adam: bool = False) -> Naive:
    """The baseline ``name`` (one of :data:`BASELINES`) with the speed levers on or off."""
    common = dict(device=device, batch_size=64, channels_last=channels_last, fused_adam=fused_adam)
    if name == "Naive":
        return Naive(num_tasks, num_classes, **common)
    if name == "EWC":
        return EWC(num_tasks, num_classes, **common)
    if name.startswith("LR-") and name in BASELINES:
        return LatentReplay(num_tasks, num_classes, model_cfg=ModelConfig(freeze_depth=int(name[3:])), buffer_size=64,
                            **common)
    raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")


def measure_baseline(
    name: str, batch_size: int, steps: int, device: str = "cpu", channels_last: bool = False, fused_adam: bool = False,
    warmup: int = 3, hw: int = 32, num_classes: int = 10,
) -> float:
    """Images per second of a baseline's experience-2 training steps: experience 1 is one step and its
    ``end_experience`` (EWC's Fisher, LR-k's frozen prefix and buffer of 64 latents) on the batch."""
    strategy = build_baseline(name, 2, num_classes, device, channels_last, fused_adam)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 3, hw, hw, generator=gen)
    y = torch.randint(0, num_classes, (batch_size,), generator=gen)
    train = torch.utils.data.TensorDataset(x, y)
    train.targets = y  # what phn.data.dataset_targets reads
    first = SimpleNamespace(task_id=0, classes=list(range(num_classes)), train=train)
    x, y = x.to(device), y.to(device)
    strategy.begin_experience(first)
    strategy.train_step(x, y, 0)
    strategy.end_experience(first)
    for _ in range(warmup):
        strategy.train_step(x, y, 1)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        strategy.train_step(x, y, 1)  # .item() in train_step synchronises every step
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
    parser.add_argument("--strategy", nargs="+", choices=BASELINES, default=None,
                        help="time these baselines instead of PartialHN (--freeze-depth and --nchw are then ignored)")
    parser.add_argument("--levers", action="store_true", help="baselines: channels-last tensors and fused Adam")
    parser.add_argument("--repeats", type=int, default=1, help="measure each configuration this many times")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.strategy:
        print(f"# baseline train_step, experience 2, device={args.device}, threads={torch.get_num_threads()}, "
              f"channels_last={args.levers}, fused_adam={args.levers}, 32x32")
        print(f"| {'model':6} | {'batch':>5} | {'img/s':>8} |")
        print(f"|{'-' * 8}|{'-' * 7}|{'-' * 10}|")
        for name in args.strategy:
            for bs in args.batch_size:
                for _ in range(args.repeats):
                    ips = measure_baseline(name, bs, args.steps, args.device, args.levers, args.levers)
                    print(f"| {name:6} | {bs:>5} | {ips:>8.0f} |", flush=True)
        return
    print(f"# PartialHN.train_step, experience 2, lookahead={args.lookahead}, device={args.device}, "
          f"threads={torch.get_num_threads()}, amp={args.amp}, channels_last={not args.nchw}, "
          f"old_tasks={args.old_tasks}, 32x32")
    print(f"| {'model':6} | {'batch':>5} | {'img/s':>8} |")
    print(f"|{'-' * 8}|{'-' * 7}|{'-' * 10}|")
    for k in args.freeze_depth:
        for bs in args.batch_size:
            for _ in range(args.repeats):
                ips = measure(k, bs, args.steps, args.lookahead, args.device, args.amp, not args.nchw, args.old_tasks)
                print(f"| {'HN-F' if k == 0 else f'HN-{k}':6} | {bs:>5} | {ips:>8.0f} |", flush=True)


if __name__ == "__main__":
    main()
