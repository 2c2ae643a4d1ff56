"""A GPU time prediction for HN-k from what one training step costs, measured on this machine.

No GPU was available to this project, so the Performance page predicts instead of measuring. One HN-k
training step (PartialHN.train_step, look-ahead and regulariser included) is run on CPU under

* ``torch.utils.flop_counter.FlopCounterMode``: floating-point operations per step (matmuls and
  convolutions, forward and backward: what a GPU's tensor cores spend time on), and
* a ``TorchDispatchMode`` that counts the aten operators dispatched per step: in eager PyTorch each
  is (about) one kernel launch on a GPU, and for a network this small the launches, not the FLOPs,
  bound the step time.

The prediction for a run is ``steps x max(FLOPs / sustained FLOP/s, operators x per-operator
overhead)`` with the assumptions as arguments (see :data:`ASSUMPTIONS`), stated beside the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from phn.config import HyperConfig, ModelConfig
from phn.strategies.partial_hn import PartialHN

ASSUMPTIONS = {
    "peak_flops": 989e12,  # H100 SXM, dense bf16 tensor-core peak (NVIDIA's data sheet)
    "efficiency": 0.3,  # fraction of peak small 32x32 convolutions sustain (assumed)
    "op_overhead_s": 10e-6,  # eager PyTorch dispatch + launch per operator on a GPU (assumed, 5-10 us typical)
}


class _OperatorCount(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


@dataclass(frozen=True)
class StepProfile:
    """Cost of one HN-k training step (batch ``batch_size``, ``old_tasks`` earlier tasks)."""

    freeze_depth: int
    batch_size: int
    old_tasks: int
    flops: int
    operators: int


def profile_step(freeze_depth: int = 4, batch_size: int = 64, old_tasks: int = 1, num_classes: int = 5) -> StepProfile:
    """FLOPs and dispatched operators of one training step of a later experience (CPU, float32)."""
    strategy = PartialHN(num_tasks=old_tasks + 1, num_classes=num_classes,
                         model_cfg=ModelConfig(freeze_depth=freeze_depth), hyper_cfg=HyperConfig())
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 3, 32, 32, generator=g)
    y = torch.randint(0, num_classes, (batch_size,), generator=g)
    for task in range(old_tasks):
        strategy.begin_experience(task)
        strategy.train_step(x, y, task)
        strategy.end_experience(task)
    strategy.begin_experience(old_tasks)
    strategy.train_step(x, y, old_tasks)  # warm-up: lazily created optimiser state
    flops = FlopCounterMode(display=False)
    with flops:
        strategy.train_step(x, y, old_tasks)
    count = _OperatorCount()
    with count:
        strategy.train_step(x, y, old_tasks)
    return StepProfile(freeze_depth, batch_size, old_tasks, int(flops.get_total_flops()), count.count)


def predict_seconds(profile: StepProfile, steps: int, peak_flops: float = ASSUMPTIONS["peak_flops"],
                    efficiency: float = ASSUMPTIONS["efficiency"],
                    op_overhead_s: float = ASSUMPTIONS["op_overhead_s"]) -> dict[str, float]:
    """Predicted training seconds of ``steps`` steps: compute-bound, overhead-bound and their max."""
    compute = steps * profile.flops / (peak_flops * efficiency)
    overhead = steps * profile.operators * op_overhead_s
    return {"compute_s": compute, "overhead_s": overhead, "predicted_s": max(compute, overhead)}


def split_cifar100_steps(epochs: int = 100, batch_size: int = 64, experiences: int = 20,
                         images_per_experience: int = 2500) -> int:
    """Training steps of a Split-CIFAR100 run (5 classes x 500 images per experience)."""
    return experiences * epochs * -(-images_per_experience // batch_size)


__all__ = ["ASSUMPTIONS", "StepProfile", "predict_seconds", "profile_step", "split_cifar100_steps"]
