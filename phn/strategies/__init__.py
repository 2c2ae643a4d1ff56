"""Continual-learning strategies behind one interface (:class:`~phn.strategies.base.Strategy`)."""

from __future__ import annotations

import torch

from phn.config import HyperConfig, ModelConfig, StrategyConfig
from phn.strategies.base import Strategy


def make_strategy(
    strategy_cfg: StrategyConfig,
    num_tasks: int,
    num_classes: int,
    model_cfg: ModelConfig | None = None,
    hyper_cfg: HyperConfig | None = None,
    lr: float = 1e-3,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    amp: bool = True,
    seed: int = 0,
) -> Strategy:
    """Build the strategy named by ``strategy_cfg`` for a stream of ``num_tasks`` experiences with
    at most ``num_classes`` classes each."""
    from phn.strategies.ewc import EWC
    from phn.strategies.latent_replay import LatentReplay
    from phn.strategies.naive import Naive
    from phn.strategies.partial_hn import PartialHN

    model_cfg = model_cfg or ModelConfig()
    common = dict(model_cfg=model_cfg, lr=lr, device=device, amp=amp, seed=seed)
    name = strategy_cfg.name
    if name == "naive":
        return Naive(num_tasks, num_classes, batch_size=batch_size, **common)
    if name == "ewc":
        return EWC(num_tasks, num_classes, batch_size=batch_size, ewc_lambda=strategy_cfg.ewc_lambda, **common)
    if name == "lr":
        return LatentReplay(num_tasks, num_classes, batch_size=batch_size, buffer_size=strategy_cfg.buffer_size,
                            replay_coef=strategy_cfg.replay_coef, **common)
    if name == "hn":
        return PartialHN(num_tasks, num_classes, hyper_cfg=hyper_cfg or HyperConfig(), **common)
    raise ValueError(f"unknown strategy {name!r}; choose from naive, ewc, lr, hn")


__all__ = ["Strategy", "make_strategy"]
