"""The one interface every continual-learning strategy implements.

The runner (:mod:`phn.train`) owns data loading, epochs, evaluation, logging and checkpoints;
a strategy owns its model(s), optimiser and whatever it carries between experiences.

Life cycle per experience ``e`` (task-incremental: the task id is known at train and test time)::

    strategy.begin_experience(e)            # e.g. freeze the prefix, initialise a task embedding
    for each batch (x, y) of e.train:       # x: (B, 3, 32, 32), y: (B,) local labels 0..C-1
        logs = strategy.train_step(x, y, e.task_id)
    strategy.end_experience(e)              # e.g. Fisher, recorded HN outputs, replay buffer;
                                            # may return rows of diagnostics
    logits = strategy.predict(x, task_id)   # (B, C), any time after
"""

from __future__ import annotations

import abc
import contextlib
from typing import Any

import torch
from torch import nn


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when ``enabled`` (strategies enable it on CUDA only; bf16 needs no
    loss scaling, which keeps the look-ahead's ``autograd.grad`` calls simple), else a no-op."""
    if enabled:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 where autocast left it in bf16 (logits, latents); float64 stays float64, so a
    strategy runs end to end in double precision too (gradient checks, ``benchmarks.cuda_check``)."""
    return x if x.dtype == torch.float64 else x.float()


class Strategy(abc.ABC):
    """Base class of Naive, EWC, LatentReplay and PartialHN.

    Args:
        num_tasks: number of experiences in the stream (heads / embeddings are allocated up front).
        num_classes: output neurons per task head (the maximum number of classes per experience).
        device: where the models live and compute.
    """

    name: str = "strategy"

    def __init__(self, num_tasks: int, num_classes: int, device: torch.device | str = "cpu") -> None:
        self.num_tasks = num_tasks
        self.num_classes = num_classes
        self.device = torch.device(device)

    # ---- training -------------------------------------------------------------------------------
    def begin_experience(self, experience: Any) -> None:  # noqa: B027 - optional hook
        """Called once before the first training step of ``experience``."""

    @abc.abstractmethod
    def train_step(self, x: torch.Tensor, y: torch.Tensor, task_id: int) -> dict[str, float]:
        """One optimisation step on a batch of one task.

        Args:
            x: (B, 3, H, W) normalised images, already on ``self.device``.
            y: (B,) local labels in 0..num_classes-1.
            task_id: the experience's task id.

        Returns:
            Scalars to log, at least ``{"loss": ...}``.
        """

    def end_experience(self, experience: Any) -> list[dict[str, Any]] | None:  # noqa: B027 - optional hook
        """Called once after the last training step of ``experience``.

        May return rows of per-experience diagnostics (plain scalars); the runner stores them with
        the experience index in ``Results.diagnostics`` (``diagnostics.csv``).
        """

    # ---- inference ------------------------------------------------------------------------------
    @abc.abstractmethod
    def predict(self, x: torch.Tensor, task_id: int) -> torch.Tensor:
        """Logits (B, num_classes) for a batch of one task, in evaluation mode, without gradients."""

    def frozen_latents(self, x: torch.Tensor) -> torch.Tensor | None:
        """Output of the frozen prefix for images x (B, 3, H, W), or ``None`` while nothing is frozen.

        Once a prefix is frozen its outputs on a test set never change, so the runner may compute
        them once and call :meth:`predict_latent` afterwards (the results are identical).
        """
        return None

    def predict_latent(self, z: torch.Tensor, task_id: int) -> torch.Tensor:
        """Logits (B, num_classes) from frozen-prefix outputs z (see :meth:`frozen_latents`)."""
        raise NotImplementedError(f"{type(self).__name__} has no frozen prefix")

    # ---- bookkeeping ----------------------------------------------------------------------------
    @abc.abstractmethod
    def modules(self) -> dict[str, nn.Module]:
        """The trainable/stateful modules by name (for parameter counts and checkpoints)."""

    def parameter_count(self) -> int:
        """Number of learnable parameters (Table 6 counts the hypernetwork for HN strategies)."""
        return sum(p.numel() for m in self.modules().values() for p in m.parameters())

    def stored_floats(self) -> int:
        """Floats kept between experiences besides the parameters (replay buffer, recorded outputs,
        Fisher matrices); Table 6's memory column for latent replay."""
        return 0

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything a resume needs: modules, optimiser, buffers, RNG states of the strategy."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
