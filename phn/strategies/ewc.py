"""Elastic Weight Consolidation (Kirkpatrick et al., 2017), Avalanche's "separate" mode.

After experience t, the diagonal empirical Fisher F_t (mean over mini-batches of squared gradients of
the cross-entropy, as Avalanche computes it) and the anchor theta_t are recorded. While training later
experiences the loss adds ``lambda * sum_t sum_k F_t,k (theta_k - theta_t,k)^2``.

That sum over experiences equals ``sum_k A_k (theta_k - mu_k)^2 + const`` with ``A = sum_t F_t`` and
``mu = sum_t F_t theta_t / A``; the constant does not depend on theta, so gradients and training are
identical while memory and time stay those of one experience. The reported penalty omits the constant
(it is exactly zero at the anchor after one experience).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from phn.config import DEFAULT_EWC_LAMBDA
from phn.strategies.base import autocast, full_precision
from phn.strategies.naive import Naive



class EWC(Naive):
    """Naive fine-tuning plus the EWC penalty.

    Args:
        ewc_lambda: penalty coefficient. The paper does not state its value; our default is
            :data:`phn.config.DEFAULT_EWC_LAMBDA` (chosen by a sweep on tuning seeds; Fisher entries of
            this model are ~1e-6..1e-2).
        **kwargs: as :class:`~phn.strategies.naive.Naive`.
    """

    name = "ewc"

    def __init__(self, *args: Any, ewc_lambda: float = DEFAULT_EWC_LAMBDA, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if ewc_lambda < 0:
            raise ValueError(f"ewc_lambda must be >= 0, got {ewc_lambda}")
        self.ewc_lambda = ewc_lambda
        self.importance: dict[str, torch.Tensor] = {}  # A = sum_t F_t
        self.anchor: dict[str, torch.Tensor] = {}  # mu = sum_t F_t theta_t / A

    def penalty(self) -> torch.Tensor | None:
        if not self.importance:
            return None
        total = torch.zeros((), device=self.device)
        for name, param in self.model.named_parameters():
            total = total + (self.importance[name] * (param - self.anchor[name]).pow(2)).sum()
        return self.ewc_lambda * total

    def fisher(self, dataset: torch.utils.data.Dataset, task_id: int) -> dict[str, torch.Tensor]:
        """Diagonal empirical Fisher on ``dataset``: mean over batches of squared gradients."""
        self.model.eval()  # do not move BN running statistics while measuring
        fisher = {n: torch.zeros_like(p) for n, p in self.model.named_parameters()}
        batches = 0
        for x, y in self.loader(dataset):
            x, y = self.as_input(x), y.to(self.device)
            self.model.zero_grad(set_to_none=True)
            with autocast(self.device, self.amp):
                loss = F.cross_entropy(full_precision(self.model(x, task_id)), y)
            loss.backward()
            for n, p in self.model.named_parameters():
                if p.grad is not None:
                    fisher[n] += p.grad.detach().pow(2)
            batches += 1
        self.model.zero_grad(set_to_none=True)
        return {n: f / max(batches, 1) for n, f in fisher.items()}

    def end_experience(self, experience: Any) -> None:
        # The Fisher first, with the training steps' running statistics, as before recalibration: with
        # exact statistics a well-fit experience's empirical Fisher nearly vanishes (measured on the toy
        # stream: lambda 1e4 and 1e6 then move the weights alike), which would void the tuned lambdas.
        fisher = self.fisher(experience.train, experience.task_id)
        self.recalibrate_statistics(experience)  # then exact statistics for evaluation
        for name, param in self.model.named_parameters():
            theta = param.detach()
            if name not in self.importance:
                self.importance[name] = fisher[name]
                self.anchor[name] = theta.clone()
                continue
            total = self.importance[name] + fisher[name]
            weighted = self.importance[name] * self.anchor[name] + fisher[name] * theta
            self.anchor[name] = torch.where(total > 0, weighted / total.clamp_min(1e-30), theta)
            self.importance[name] = total

    def stored_floats(self) -> int:
        return sum(t.numel() for t in self.importance.values()) + sum(t.numel() for t in self.anchor.values())

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "importance": self.importance, "anchor": self.anchor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.importance = {n: t.to(self.device) for n, t in state["importance"].items()}
        self.anchor = {n: t.to(self.device) for n, t in state["anchor"].items()}
