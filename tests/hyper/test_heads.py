"""Hypernetwork heads: channel-wise conv generation (Appendix A.2), per-task tables, linear head."""

from __future__ import annotations

import math

import pytest
import torch

from phn.hyper.heads import ConvHead, LinearHead, TaskTable, make_head


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_conv_head_equals_shared_linear_on_h_and_lookup() -> None:
    """Filter j = Linear([h ; c_j]).view(C_in, k, k), one Linear shared by the output channels."""
    head = ConvHead((6, 4, 3, 3), h_dim=5, lookup_dim=3).double()
    h = torch.randn(2, 5, dtype=torch.float64)
    out = head(h)
    assert out.shape == (2, 6, 4, 3, 3)
    for t in range(2):
        for j in range(6):
            ref = torch.nn.functional.linear(torch.cat([h[t], head.lookup[j]]), head.weight, head.bias)
            torch.testing.assert_close(out[t, j], ref.view(4, 3, 3))


def test_conv_head_parameter_count() -> None:
    # d * C_out (lookup) + (h + d) * C_in * k * k (weight) + C_in * k * k (bias)
    head = ConvHead((160, 160, 3, 3), h_dim=32, lookup_dim=32)
    assert n_params(head) == 32 * 160 + (32 + 32 + 1) * 160 * 9


def test_conv_head_kaiming_init_gives_kaiming_scale() -> None:
    torch.manual_seed(0)
    head = ConvHead((80, 40, 3, 3), h_dim=32, lookup_dim=32, init="kaiming")
    w = head(torch.zeros(1, 32))  # the task-independent part W_c c_j + b
    assert 0.9 < w.std().item() / math.sqrt(2 / (40 * 9)) < 1.1
    assert torch.equal(head.bias, torch.zeros_like(head.bias))


def test_conv_head_default_init_is_the_authors_pytorch_default() -> None:
    """The authors' GenHead: nn.Embedding lookup N(0, 1), nn.Linear(h + d -> F) weight and bias
    uniform in +-1/sqrt(h + d)."""
    torch.manual_seed(0)
    h_dim, d = 32, 32
    head = ConvHead((160, 80, 3, 3), h_dim=h_dim, lookup_dim=d)
    bound = 1 / math.sqrt(h_dim + d)
    for p in (head.weight, head.bias):
        assert p.abs().max() <= bound and p.abs().max() > 0.99 * bound  # uniform up to the bound
        assert 0.95 < p.var().item() / (bound**2 / 3) < 1.05  # the variance of U(-bound, bound)
    assert 0.97 < head.lookup.std().item() < 1.03 and abs(head.lookup.mean().item()) < 0.02
    # generated filters: Var(W_c c_j + b) = (d + 1) * bound^2 / 3, std 0.41 for the paper's sizes
    w = head(torch.zeros(1, h_dim))
    assert 0.95 < w.std().item() / math.sqrt((d + 1) * bound**2 / 3) < 1.05


def test_linear_head_inits() -> None:
    torch.manual_seed(0)
    default = LinearHead((10, 160), h_dim=32)
    bound = 1 / math.sqrt(32)  # nn.Linear's default, the authors' classifier head
    assert default.linear.weight.abs().max() <= bound and default.linear.bias.abs().max() <= bound
    assert 0.95 < default.linear.weight.var().item() / (bound**2 / 3) < 1.05
    kaiming = LinearHead((10, 160), h_dim=32, init="kaiming")
    assert 0.95 < kaiming.linear.weight.std().item() / math.sqrt(1 / (160 * 32)) < 1.05
    assert torch.equal(kaiming.linear.bias, torch.zeros(1600))


def test_unknown_init_is_rejected() -> None:
    with pytest.raises(ValueError, match="init must be one of"):
        ConvHead((4, 4, 3, 3), h_dim=8, lookup_dim=8, init="xavier")
    with pytest.raises(ValueError, match="init must be one of"):
        make_head("linear_weight", torch.Size([2, 8]), 3, 8, 8, init="xavier")


def test_task_table_rows_and_inits() -> None:
    gamma = TaskTable(4, (3,), init=1.0)
    assert torch.equal(gamma(None, torch.tensor([2, 0])), torch.ones(2, 3))
    with torch.no_grad():
        gamma.table[2] = 5.0
    assert torch.equal(gamma(None, torch.tensor([2, 0]))[0], torch.full((3,), 5.0))
    assert torch.equal(make_head("norm_bias", torch.Size([3]), 4, 8, 2).table, torch.zeros(4, 3))
    assert torch.equal(make_head("linear_bias", torch.Size([3]), 4, 8, 2).table, torch.zeros(4, 3))


def test_linear_head_shape_and_count() -> None:
    head = LinearHead((10, 160), h_dim=32)
    assert head(torch.randn(3, 32)).shape == (3, 10, 160)
    assert n_params(head) == 33 * 1600
