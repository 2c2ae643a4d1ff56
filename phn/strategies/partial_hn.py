"""Partial hypernetwork strategy HN-k (Section 3, Algorithm 1).

f(x) = h_omega(g_phi(x)) with omega = H_psi(e_t):

- g_phi, the *prefix* (stem + stages 1..k; empty for k = 0), is trained with CE on experience 1 together
  with the hypernetwork, then frozen (``requires_grad=False``, eval mode, run under ``torch.no_grad``).
- h_omega, the *generated part* (:class:`phn.models.target.GeneratedResNet`), runs on the weights the
  hypernetwork generates ONCE per step for the batch's task.
- From experience 2: CE + beta * R (Eq. 7) through the look-ahead step (:mod:`phn.optim.lookahead`),
  applied by Adam (lr 1e-3) whose state carries over between experiences, as in the authors' pipeline.
- After every experience, H(e_j) of every task seen so far is recorded (:mod:`phn.optim.regulariser`).

k = 0 freezes nothing: HN-0 is HN-F (the hypernetwork generates every weight); :attr:`name` says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.utils.data import DataLoader

from phn.config import HyperConfig, ModelConfig
from phn.hyper.hypernet import HyperNetwork
from phn.models.resnet import build_prefix, freeze_, recalibrate_bn_
from phn.models.target import GeneratedResNet
from phn.optim.lookahead import LookaheadResult, lookahead_gradients
from phn.optim.regulariser import OutputRegulariser
from phn.strategies.base import Strategy, autocast, full_precision


def _task_id(experience: Any) -> int:
    return int(getattr(experience, "task_id", experience))


class PartialHN(Strategy):
    """HN-k: frozen prefix of depth k + hypernetwork-generated remainder.

    Args:
        num_tasks: experiences in the stream (embedding / per-task table rows).
        num_classes: C, outputs per task.
        model_cfg: freeze depth k, width, normalisation choices.
        hyper_cfg: hypernetwork sizes, beta, look-ahead order, regulariser sample size.
        lr: Adam learning rate (also the look-ahead's virtual step size).
        device: where everything lives.
        seed: seeds the initialisation (through a forked RNG: the global RNG is left untouched) and the
            regulariser's local generator.
        generator: alternative to ``seed``: a seed is drawn from it.
        amp: on CUDA, run prefix and generated network under bf16 autocast (hypernetwork,
            regulariser and loss stay in fp32). Ignored on CPU (set ``strategy.amp = True`` to force
            CPU bf16 autocast; it is not the default because it changes the numerics).
        channels_last: channels-last activations (default; on the 2-core CPU it made HN-4 steps ~1.5x,
            HN-2 ~1.15x and HN-F ~1.1x faster, see ``benchmarks/engine_speed.py --nchw``).
        recalibrate_bn: with ``prefix_norm="running"``, recompute the prefix's BN running statistics
            over experience 1's training set (``experience.train``) when the prefix is frozen, so that
            eval-mode features match the final prefix weights (ours; the authors' prefix uses batch
            statistics). Skipped when ``experience`` has no ``train`` dataset.
    """

    def __init__(
        self,
        num_tasks: int,
        num_classes: int,
        model_cfg: ModelConfig | None = None,
        hyper_cfg: HyperConfig | None = None,
        lr: float = 1e-3,
        device: torch.device | str = "cpu",
        seed: int = 0,
        generator: torch.Generator | None = None,
        amp: bool = False,
        channels_last: bool = True,
        recalibrate_bn: bool = True,
    ) -> None:
        super().__init__(num_tasks, num_classes, device)
        self.model_cfg = model_cfg or ModelConfig()
        self.hyper_cfg = hyper_cfg or HyperConfig()
        self.lr = lr
        if generator is not None:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        self.seed = seed
        self.amp = amp and self.device.type == "cuda"
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        k, mc = self.model_cfg.freeze_depth, self.model_cfg
        self.name = "HN-F" if k == 0 else f"HN-{k}"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.prefix = build_prefix(k, mc.nf, mc.prefix_norm).to(self.device)
            self.target = GeneratedResNet(k, num_classes, mc.nf, mc.norm).to(self.device)
            self.hnet = HyperNetwork.for_target(self.target, num_tasks, self.hyper_cfg).to(self.device)
        self.optimizer = torch.optim.Adam(
            [{"params": list(self.hnet.parameters())}, {"params": list(self.prefix.parameters())}], lr=lr,
            fused=True,  # one kernel for all ~100 tensors: 3 ms -> 0.9 ms per step on CPU
        )
        self.regulariser = OutputRegulariser(self.hyper_cfg.reg_tasks, seed=seed + 1)
        self.recalibrate_bn = recalibrate_bn
        self.frozen = False
        self.seen_tasks: list[int] = []
        self._batch_size = 64  # recalibration batch size: the last training batch size

    # ---- life cycle -----------------------------------------------------------------------------
    def begin_experience(self, experience: Any) -> None:
        """Freeze the prefix if an experience was already trained; copy the last task's embedding."""
        task_id = _task_id(experience)
        if self.seen_tasks and not self.frozen:
            self.freeze_prefix()
        if self.seen_tasks and task_id not in self.seen_tasks:
            self.hnet.init_task(task_id, source=self.seen_tasks[-1])
        if not self.frozen:
            self.prefix.train()

    def end_experience(self, experience: Any) -> list[dict[str, Any]]:
        """Freeze the prefix after the first experience; record H(e_j) for every task seen so far.

        Returns, for every task recorded before this experience, how far its generated weights moved
        during it (:meth:`OutputRegulariser.drift`: one row per task and tensor group).
        """
        drift = self.regulariser.drift(self.hnet)
        task_id = _task_id(experience)
        if task_id not in self.seen_tasks:
            self.seen_tasks.append(task_id)
        if not self.frozen:
            if self.recalibrate_bn and self.model_cfg.prefix_norm == "running" and hasattr(experience, "train"):
                loader = DataLoader(experience.train, batch_size=self._batch_size, shuffle=False)
                batches = (b[0].to(self.device, memory_format=self.memory_format) for b in loader)
                with autocast(self.device, self.amp):
                    recalibrate_bn_(self.prefix, batches)
            self.freeze_prefix()
        self.regulariser.record(self.hnet, self.seen_tasks)
        return drift

    def freeze_prefix(self) -> None:
        """phi: requires_grad False, eval mode (BN running stats of experience 1), no more updates."""
        freeze_(self.prefix)
        for p in self.prefix.parameters():
            p.grad = None
        self.frozen = True

    # ---- training -------------------------------------------------------------------------------
    def _logits(self, z: torch.Tensor, weights: dict[str, torch.Tensor]) -> torch.Tensor:
        with autocast(self.device, self.amp):
            return full_precision(self.target(z, weights))  # (B, C)

    def train_step(self, x: torch.Tensor, y: torch.Tensor, task_id: int) -> dict[str, float]:
        """One step on a batch of one task; returns loss, ce, reg (R, unscaled) and cos(g1, g2)."""
        if not self.frozen:  # experience 1: CE on prefix + hypernetwork (Eq. 5-6)
            self._batch_size = x.shape[0]
            x = x.to(self.device, memory_format=self.memory_format)
            y = y.to(self.device)
            with autocast(self.device, self.amp):
                z = self.prefix(x)
            ce = F.cross_entropy(self._logits(z, self.hnet.task_weights(task_id)), y)
            self.optimizer.zero_grad(set_to_none=True)
            ce.backward()
            self.optimizer.step()
            return {"loss": ce.item(), "ce": ce.item(), "reg": 0.0, "cos": math.nan}

        res = self.compute_gradients(x, y, task_id)
        for name, p in self.hnet.named_parameters():
            p.grad = res.grads[name]
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        ce, reg, beta = res.ce.item(), res.reg.item(), self.hyper_cfg.beta
        return {"loss": ce + beta * reg, "ce": ce, "reg": reg, "cos": res.cos}

    def compute_gradients(self, x: torch.Tensor, y: torch.Tensor, task_id: int) -> LookaheadResult:
        """Hypernetwork gradients of one step from experience 2 on, without applying them.

        The prefix runs without autograd; omega = H(e_t) is generated once for the whole batch;
        R (Eq. 7) covers the recorded earlier tasks (a random subset of ``reg_tasks``) in one batched
        call. ``cos`` is NaN when there is no earlier task.
        """
        x = x.to(self.device, memory_format=self.memory_format)
        y = y.to(self.device)
        with torch.no_grad(), autocast(self.device, self.amp):
            z = self.prefix(x)  # (B, C_k, H_k, W_k), no autograd through the frozen prefix
        ids = torch.tensor([task_id], device=self.device)

        def ce_loss(params: Mapping[str, torch.Tensor]) -> torch.Tensor:
            omega = functional_call(self.hnet, dict(params), (ids,))  # one generation for the whole batch
            return F.cross_entropy(self._logits(z, {n: w[0] for n, w in omega.items()}), y)

        rows = self.regulariser.sample(task_id)

        def reg_loss(params: Mapping[str, torch.Tensor]) -> torch.Tensor:
            if rows is None:  # no earlier task recorded
                return torch.zeros((), device=self.device)
            return self.regulariser.penalty(self.hnet, rows, params)

        lr = self.optimizer.param_groups[0]["lr"]
        params = dict(self.hnet.named_parameters())
        res = lookahead_gradients(params, ce_loss, reg_loss, lr, self.hyper_cfg.beta, self.hyper_cfg.lookahead)
        if rows is None:
            res.cos = math.nan
        return res

    # ---- inference ------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, x: torch.Tensor, task_id: int) -> torch.Tensor:
        """Logits (B, C) with task ``task_id``'s generated weights; the prefix in eval mode."""
        was_training = self.prefix.training
        self.prefix.eval()
        x = x.to(self.device, memory_format=self.memory_format)
        with autocast(self.device, self.amp):
            z = self.prefix(x)
        logits = self._logits(z, self.hnet.task_weights(task_id))
        self.prefix.train(was_training)
        return logits

    @torch.no_grad()
    def frozen_latents(self, x: torch.Tensor) -> torch.Tensor | None:
        """z = g_phi(x) once the prefix is frozen (eval mode), else None."""
        if not self.frozen:
            return None
        with autocast(self.device, self.amp):
            return self.prefix(x.to(self.device, memory_format=self.memory_format))

    @torch.no_grad()
    def predict_latent(self, z: torch.Tensor, task_id: int) -> torch.Tensor:
        """Logits (B, C) from frozen-prefix outputs z with task ``task_id``'s generated weights."""
        return self._logits(z, self.hnet.task_weights(task_id))

    # ---- bookkeeping ----------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        return {"prefix": self.prefix, "hnet": self.hnet}

    def parameter_count(self) -> int:
        """Hypernetwork parameters (Table 6's "# of HN Parameters")."""
        return sum(p.numel() for p in self.hnet.parameters())

    def prefix_parameter_count(self) -> int:
        """Parameters of the frozen prefix phi (0 for HN-F)."""
        return sum(p.numel() for p in self.prefix.parameters())

    def stored_floats(self) -> int:
        """Recorded hypernetwork outputs H*(e_j) kept for the regulariser."""
        return self.regulariser.num_floats()

    def state_dict(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix.state_dict(), "hnet": self.hnet.state_dict(),
            "optimizer": self.optimizer.state_dict(), "regulariser": self.regulariser.state_dict(),
            "frozen": self.frozen, "seen_tasks": list(self.seen_tasks),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.prefix.load_state_dict(state["prefix"])
        self.hnet.load_state_dict(state["hnet"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.regulariser.load_state_dict(state["regulariser"], self.device)
        self.seen_tasks = list(state["seen_tasks"])
        self.frozen = False
        if state["frozen"]:
            self.freeze_prefix()


__all__ = ["PartialHN"]
