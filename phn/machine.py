"""How fast this machine is, in the one unit every time in the book is quoted beside.

Machines of the same kind differ about 3x in speed, so a time means little alone. The unit is the
plain-network ceiling of ``python -m benchmarks.speed`` for HN-F: the whole slim ResNet-18 (the layers
HN-F generates, with their own parameters, per-sample normalisation as in phn) trained directly with
fused Adam (lr 1e-3) on channels-last 32 x 32 batches of 64, in training images per second. The book's
budgets are set at :data:`REFERENCE_IMG_S`; :func:`scaled_minutes` puts a time on that scale.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

REFERENCE_IMG_S = 600.0  # the machine the book's budgets were set on


def plain_images_per_second(batch: int = 64, steps: int = 8, warmup: int = 2, repeats: int = 3,
                            threads: int | None = 2, num_classes: int = 10, seed: int = 0) -> float:
    """Training images per second of the plain slim ResNet-18 on this CPU (median of ``repeats``
    timings of ``steps`` steps after ``warmup`` steps), with ``threads`` torch threads (None: as set).

    Returns:
        img/s; the same measure as ``benchmarks.speed``'s ceiling of HN-F at batch 64.
    """
    from phn.models.target import GeneratedResNet

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = GeneratedResNet(0, num_classes).requires_grad_(True)
            x = torch.randn(batch, 3, 32, 32).to(memory_format=torch.channels_last)
            y = torch.randint(0, num_classes, (batch,))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)

        def step() -> None:
            loss = F.cross_entropy(model(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss.item()

        for _ in range(warmup):
            step()
        rates = []
        for _ in range(repeats):
            tic = time.perf_counter()
            for _ in range(steps):
                step()
            rates.append(batch * steps / (time.perf_counter() - tic))
        return float(sorted(rates)[len(rates) // 2])
    finally:
        torch.set_num_threads(previous)


def scaled_minutes(minutes: float, img_s: float, reference: float = REFERENCE_IMG_S) -> float:
    """``minutes`` measured on a machine of ``img_s`` as they would be on one of ``reference`` img/s."""
    return minutes * img_s / reference


def speed_line(img_s: float) -> str:
    """One sentence for beside a time, e.g. ``"this machine trains the plain network at 410 img/s
    (budgets are set at 600 img/s)"``."""
    return (f"this machine trains the plain slim ResNet-18 at {img_s:,.0f} img/s (2 threads, batch 64; the "
            f"book's budgets are set at {REFERENCE_IMG_S:,.0f} img/s)")


__all__ = ["REFERENCE_IMG_S", "plain_images_per_second", "scaled_minutes", "speed_line"]
