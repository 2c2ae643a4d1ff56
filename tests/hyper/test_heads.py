"""Hypernetwork heads: channel-wise conv generation (Appendix A.2), per-task tables, linear head."""

from __future__ import annotations

import math

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


def test_conv_head_init_is_kaiming_like() -> None:
    torch.manual_seed(0)
    head = ConvHead((80, 40, 3, 3), h_dim=32, lookup_dim=32)
    w = head(torch.zeros(1, 32))  # the task-independent part W_c c_j + b
    assert 0.9 < w.std().item() / math.sqrt(2 / (40 * 9)) < 1.1


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
