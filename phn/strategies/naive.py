"""Naive fine-tuning of the whole slim ResNet-18 with one classifier head per task.

Also the base of :class:`~phn.strategies.ewc.EWC` and
:class:`~phn.strategies.latent_replay.LatentReplay`, which share its model, optimiser and state.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from phn.config import ModelConfig
from phn.models.resnet import SlimResNet18, recalibrate_bn_
from phn.strategies.base import Strategy, autocast, full_precision


class Naive(Strategy):
    """Fine-tune everything on each new experience (a multi-head, task-incremental baseline).

    Args:
        num_tasks: number of experiences (one head each, allocated up front).
        num_classes: outputs per head.
        model_cfg: ``nf``; ``prefix_norm`` sets the BN of this plain network: ``"running"`` (default,
            running statistics, eval mode at test time) or ``"batch"`` (the authors' batch-statistics
            BN: predictions then depend on how test batches are composed).
        lr: Adam learning rate (paper: 1e-3). Adam's state carries over between experiences, as in
            the authors' Avalanche pipeline.
        batch_size: batch size of the passes a strategy makes over an experience on its own
            (EWC's Fisher, latent replay's buffer).
        amp: bf16 autocast on CUDA.
        channels_last: channels-last weights and activations, as PartialHN (default: a speed lever,
            1.04-1.71x per step on a 2-core CPU, ``benchmarks/engine_speed.py --strategy ...``). Not
            bit-identical to contiguous tensors (convolutions sum in another order); Naive's fidelity
            seeds with both levers off and on are in ``benchmarks/results/baseline-levers``.
        fused_adam: Adam as one fused kernel, as PartialHN (default; not bit-identical to PyTorch's
            default Adam kernel either). Both False: the numbers of releases before the levers.
        recalibrate_bn: with ``prefix_norm="running"``, recompute every BN layer's running statistics
            at the end of each experience from one pass over its training images (exact statistics
            of the final weights, as PartialHN and LR-k do after experience 1). Without it the
            exponential averages (momentum 0.1) can lag the weights so far that a learned experience
            tests at chance in eval mode (measured: fidelity stream, seed 0, experience 1 at 50.2 %
            with running statistics, 97.1 % with batch statistics, 97.3 % after recalibration).
            False: the numbers of releases before it.
    """

    name = "naive"

    def __init__(self, num_tasks: int, num_classes: int, model_cfg: ModelConfig | None = None, lr: float = 1e-3,
                 device: torch.device | str = "cpu", batch_size: int = 64, amp: bool = True, seed: int = 0,
                 channels_last: bool = True, fused_adam: bool = True, recalibrate_bn: bool = True) -> None:
        super().__init__(num_tasks, num_classes, device)
        self.model_cfg = model_cfg or ModelConfig()
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = SlimResNet18(num_classes, num_tasks, self.model_cfg.nf, self.model_cfg.prefix_norm).to(
            self.device, memory_format=self.memory_format)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr, fused=True if fused_adam else None)
        self.batch_size = batch_size
        self.amp = amp and self.device.type == "cuda"
        self.generator = torch.Generator().manual_seed(seed)
        self.recalibrate_bn = recalibrate_bn

    def as_input(self, x: torch.Tensor) -> torch.Tensor:
        """Images x (B, 3, H, W) on the strategy's device, in its memory format."""
        return x.to(self.device, memory_format=self.memory_format)

    # ---- hooks for subclasses -------------------------------------------------------------------
    def penalty(self) -> torch.Tensor | None:
        """Extra loss term added to the cross-entropy (EWC); ``None`` for none."""
        return None

    def set_train_mode(self) -> None:
        self.model.train()

    def loss(self, x: torch.Tensor, y: torch.Tensor, task_id: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Cross-entropy of head ``task_id`` on (x, y). x: (B, 3, H, W), y: (B,)."""
        with autocast(self.device, self.amp):
            ce = F.cross_entropy(full_precision(self.model(self.as_input(x), task_id)), y)
        return ce, {"ce": ce.item()}

    # ---- Strategy interface ---------------------------------------------------------------------
    def train_step(self, x: torch.Tensor, y: torch.Tensor, task_id: int) -> dict[str, float]:
        self.set_train_mode()
        loss, logs = self.loss(x, y, task_id)
        extra = self.penalty()
        if extra is not None:
            logs["penalty"] = extra.item()
            loss = loss + extra
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item(), **logs}

    def end_experience(self, experience: Any) -> None:
        self.recalibrate_statistics(experience)

    def recalibrate_statistics(self, experience: Any) -> None:
        """Exact BN running statistics of the whole network on ``experience``'s training images (one
        unshuffled pass, :func:`phn.models.resnet.recalibrate_bn_`), when ``recalibrate_bn`` and the
        network keeps running statistics; leaves the model in eval mode."""
        if self.recalibrate_bn and self.model_cfg.prefix_norm == "running" and hasattr(experience, "train"):
            with autocast(self.device, self.amp):
                recalibrate_bn_(self.model, (self.as_input(x) for x, _ in self.loader(experience.train)))

    @torch.no_grad()
    def predict(self, x: torch.Tensor, task_id: int) -> torch.Tensor:
        self.model.eval()
        with autocast(self.device, self.amp):
            return full_precision(self.model(self.as_input(x), task_id))

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])

    def loader(self, dataset: torch.utils.data.Dataset) -> torch.utils.data.DataLoader:
        """A deterministic, unshuffled pass over ``dataset`` (for Fisher / buffer filling)."""
        return torch.utils.data.DataLoader(dataset, batch_size=self.batch_size, shuffle=False)
