"""Fixtures for the optim tests: a tiny hypernetwork + target (every head kind) in float64."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F

from phn.hyper.hypernet import HyperNetwork

SHAPES = OrderedDict(
    [("conv.weight", torch.Size([2, 1, 3, 3])), ("bn.weight", torch.Size([2])), ("bn.bias", torch.Size([2])),
     ("classifier.weight", torch.Size([3, 2])), ("classifier.bias", torch.Size([3]))]
)
KINDS = {"conv.weight": "conv", "bn.weight": "norm_weight", "bn.bias": "norm_bias",
         "classifier.weight": "linear_weight", "classifier.bias": "linear_bias"}


def tiny_hnet(seed: int = 0, num_tasks: int = 4) -> HyperNetwork:
    torch.manual_seed(seed)
    return HyperNetwork(SHAPES, KINDS, num_tasks, embedding_dim=3, hidden=(4, 3), lookup_dim=2).double()


def tiny_target(x: torch.Tensor, w: dict[str, torch.Tensor]) -> torch.Tensor:
    """x: (B, 1, 5, 5) -> logits (B, 3): conv, per-sample norm, ReLU, pooling, linear."""
    out = F.conv2d(x, w["conv.weight"], padding=1)
    out = F.group_norm(out, 2, w["bn.weight"], w["bn.bias"], 1e-5)
    return F.linear(out.relu().mean(dim=(2, 3)), w["classifier.weight"], w["classifier.bias"])


def tiny_batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(6, 1, 5, 5, generator=g, dtype=torch.float64), torch.randint(0, 3, (6,), generator=g)


class Tiny:
    """Namespace handed to the tests by the ``tiny`` fixture."""

    hnet = staticmethod(tiny_hnet)
    target = staticmethod(tiny_target)
    batch = staticmethod(tiny_batch)


@pytest.fixture
def tiny() -> type[Tiny]:
    return Tiny
