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


def comparison(freeze_depths=(4, 2, 0), e2e_csv=None) -> "pd.DataFrame":
    """One row per HN-k: FLOPs and operators of one step (counted here), the predicted Split-CIFAR100
    time (:func:`predict_seconds`), the measured GPU step time and 100-epoch time from ``e2e_csv``
    (:mod:`benchmarks.e2e_times`, where it has the model) with the per-operator time it implies, and
    the paper's time (Table 2, the paper's GPU)."""
    from pathlib import Path

    import pandas as pd

    from benchmarks.e2e_times import extrapolate
    from phn.reference import paper_table2

    measured = (extrapolate(pd.read_csv(e2e_csv)).set_index("model")
                if e2e_csv is not None and Path(e2e_csv).is_file() else pd.DataFrame())
    paper = paper_table2("split-cifar100").set_index("strategy")
    rows = []
    for k in freeze_depths:
        model = "HN-F" if k == 0 else f"HN-{k}"
        profile = profile_step(freeze_depth=k)  # one step of experience 2, batch 64, on this CPU
        row = {"model": model, "GFLOP / step": profile.flops / 1e9, "operators / step": profile.operators,
               "predicted (min, H100 model)": predict_seconds(profile, split_cifar100_steps())["predicted_s"] / 60}
        if model in measured.index:
            m = measured.loc[model]
            row |= {"measured ms / step (H200)": m.step_ms, "epochs measured": int(m.measured_epochs),
                    "100 epochs (min, H200, scaled)": m.predicted_100_epochs_min,
                    "implied µs / operator (ops of exp. 2)": 1e3 * m.step_ms / profile.operators}
        row["paper (its GPU)"] = paper.loc[model, "paper_time"] if model in paper.index else ""
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = ["ASSUMPTIONS", "comparison", "StepProfile", "predict_seconds", "profile_step", "split_cifar100_steps"]
