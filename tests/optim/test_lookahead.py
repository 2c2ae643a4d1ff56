"""Look-ahead gradients (Eq. 8-9, Algorithm 1) against independent computations; purity."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from phn.optim.lookahead import cosine, lookahead_gradients, virtual_step
from phn.optim.regulariser import OutputRegulariser

LR, BETA, TASK = 0.05, 0.5, 2


def setup(tiny):
    """Hypernetwork with tasks 0, 1 recorded, then moved so that R != 0; batch of task 2."""
    hnet = tiny.hnet()
    reg = OutputRegulariser(reg_tasks=0)
    reg.record(hnet, [0, 1])
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in hnet.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    x, y = tiny.batch()
    rows = reg.sample(TASK)
    ids = torch.tensor([TASK])

    def ce_loss(params):
        w = functional_call(hnet, dict(params), (ids,))
        return F.cross_entropy(tiny.target(x, {n: v[0] for n, v in w.items()}), y)

    def reg_loss(params):
        return reg.penalty(hnet, rows, params)

    return hnet, reg, x, y, ce_loss, reg_loss


def manual_grads(module: torch.nn.Module, loss_fn) -> dict[str, torch.Tensor]:
    """Gradient by plain .backward() on a deep copy of the module."""
    loss = loss_fn(module)
    loss.backward()
    return {n: p.grad.clone() for n, p in module.named_parameters()}


def independent(tiny, hnet, reg, x, y, order):
    """g1, g2 by manual parameter copies (and an explicit Hessian for the second order)."""
    rows, ids = reg.sample(TASK), torch.tensor([TASK])

    def ce_of(m):
        w = m.task_weights(TASK)
        return F.cross_entropy(tiny.target(x, w), y)

    def r_of(m):
        return BETA * reg.penalty(m, rows)

    g1 = manual_grads(copy.deepcopy(hnet), ce_of)
    moved = copy.deepcopy(hnet)
    if order != "none":
        with torch.no_grad():
            for n, p in moved.named_parameters():
                p -= LR * g1[n]  # omega' by hand
    gr = manual_grads(moved, r_of)  # grad of beta * R at omega' (or omega)
    if order != "second":
        return g1, gr
    # second order: g2 = (I - lr * Hess CE(omega)) @ grad(beta R)(omega'), Hessian built explicitly
    names = [n for n, _ in hnet.named_parameters()]
    shapes = [p.shape for _, p in hnet.named_parameters()]
    flat0 = torch.cat([p.detach().reshape(-1) for _, p in hnet.named_parameters()])

    def unflat(v):
        out, i = {}, 0
        for n, s in zip(names, shapes, strict=True):
            out[n] = v[i : i + s.numel()].view(s)
            i += s.numel()
        return out

    def ce_flat(v):
        w = functional_call(hnet, unflat(v), (ids,))
        return F.cross_entropy(tiny.target(x, {n: t[0] for n, t in w.items()}), y)

    hess = torch.autograd.functional.hessian(ce_flat, flat0)
    gr_flat = torch.cat([gr[n].reshape(-1) for n in names])
    return g1, unflat(gr_flat - LR * hess @ gr_flat)


@pytest.mark.parametrize("order", ["first", "second", "none"])
def test_gradients_match_independent_computation(tiny, order: str) -> None:
    hnet, reg, x, y, ce_loss, reg_loss = setup(tiny)
    res = lookahead_gradients(dict(hnet.named_parameters()), ce_loss, reg_loss, LR, BETA, order)
    g1, g2 = independent(tiny, hnet, reg, x, y, order)
    scale = 1.0 if order == "none" else 0.5
    for n in g1:
        torch.testing.assert_close(res.g1[n], g1[n])
        torch.testing.assert_close(res.g2[n], g2[n])
        torch.testing.assert_close(res.grads[n], scale * (g1[n] + g2[n]))
    flat1 = torch.cat([g.reshape(-1) for g in g1.values()])
    flat2 = torch.cat([g.reshape(-1) for g in g2.values()])
    assert res.cos == pytest.approx(float(F.cosine_similarity(flat1, flat2, dim=0)), abs=1e-9)


def test_second_order_differs_from_first(tiny) -> None:
    hnet, _, _, _, ce_loss, reg_loss = setup(tiny)
    params = dict(hnet.named_parameters())
    first = lookahead_gradients(params, ce_loss, reg_loss, LR, BETA, "first")
    second = lookahead_gradients(params, ce_loss, reg_loss, LR, BETA, "second")
    assert max((first.g2[n] - second.g2[n]).abs().max().item() for n in params) > 1e-8


def test_lookahead_is_pure(tiny) -> None:
    hnet, _, _, _, ce_loss, reg_loss = setup(tiny)
    opt = torch.optim.Adam(hnet.parameters(), lr=LR)
    ce_loss(dict(hnet.named_parameters())).backward()
    opt.step()  # optimiser now holds state (exp_avg, exp_avg_sq, step)
    for p in hnet.parameters():
        p.grad = torch.full_like(p, 7.0)
    params_before = {n: p.detach().clone() for n, p in hnet.named_parameters()}
    opt_before = copy.deepcopy(opt.state_dict())
    for order in ("first", "second", "none"):
        lookahead_gradients(dict(hnet.named_parameters()), ce_loss, reg_loss, LR, BETA, order)
    for n, p in hnet.named_parameters():
        assert torch.equal(p, params_before[n]) and torch.equal(p.grad, torch.full_like(p, 7.0))
    after = opt.state_dict()
    assert after["param_groups"] == opt_before["param_groups"]
    for i, state in opt_before["state"].items():
        assert all(torch.equal(torch.as_tensor(v), torch.as_tensor(after["state"][i][k])) for k, v in state.items())


def test_virtual_step_is_a_pure_function() -> None:
    params = {"a": torch.ones(3), "b": torch.zeros(2)}
    grads = {"a": torch.full((3,), 2.0), "b": torch.ones(2)}
    out = virtual_step(params, grads, 0.5)
    assert torch.equal(out["a"], torch.zeros(3)) and torch.equal(out["b"], torch.full((2,), -0.5))
    assert torch.equal(params["a"], torch.ones(3)) and torch.equal(grads["a"], torch.full((3,), 2.0))
    assert out["a"] is not params["a"]


def test_cosine() -> None:
    a = {"x": torch.tensor([1.0, 0.0]), "y": torch.tensor([[1.0]])}
    b = {"x": torch.tensor([-1.0, 0.0]), "y": torch.tensor([[-1.0]])}
    assert cosine(a, b) == pytest.approx(-1.0)
    assert math.isnan(cosine(a, {"x": torch.zeros(2), "y": torch.zeros(1, 1)}))
