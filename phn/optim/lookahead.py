"""Look-ahead gradients for the hypernetwork (Section 3, Eq. 8-9, Algorithm 1).

From experience 2 on, with omega the hypernetwork parameters, lr the optimiser's learning rate and
beta the regularisation coefficient::

    g1      = d CE(omega) / d omega                                   (Eq. 8)
    omega'  = omega - lr * g1                                         (virtual step, :func:`virtual_step`)
    g2      = d [beta * R(omega')] / d omega                          (Eq. 9)
    update  = (g1 + g2) / 2                                           (Algorithm 1, line 19)

``order="first"`` (default, the authors' scripts) treats g1 as a constant in omega', so g2 is the
gradient of beta * R evaluated at omega'. ``order="second"`` differentiates through the virtual step
(``create_graph=True`` on g1), adding ``-lr * Hess(CE) @ grad R(omega')``. ``order="none"`` is the
plain objective CE(omega) + beta * R(omega): update = g1 + g2 with both gradients at omega.
Under Adam a constant factor on the update changes nothing (up to epsilon), so averaging vs summing
only matters for plain SGD.

Everything here is pure: parameters and gradients go in as dicts of tensors, new dicts come out; no
parameter, ``.grad`` field or optimiser state is touched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

LossFn = Callable[[Mapping[str, torch.Tensor]], torch.Tensor]
ORDERS = ("none", "first", "second")


def virtual_step(
    params: Mapping[str, torch.Tensor], grads: Mapping[str, torch.Tensor], lr: float
) -> dict[str, torch.Tensor]:
    """omega' = omega - lr * g as a new dict (differentiable w.r.t. both inputs; nothing mutated)."""
    return {name: p - lr * grads[name] for name, p in params.items()}


def _grad(
    loss: torch.Tensor, params: Mapping[str, torch.Tensor], create_graph: bool = False
) -> dict[str, torch.Tensor]:
    if not loss.requires_grad:  # e.g. R = 0 when there is no earlier task
        return {n: torch.zeros_like(p) for n, p in params.items()}
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph, allow_unused=True)
    return {n: torch.zeros_like(p) if g is None else g for (n, p), g in zip(params.items(), grads, strict=True)}


def cosine(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    """cos(a, b) of two gradient dicts flattened over all tensors (NaN if either is zero)."""
    la, lb = list(a.values()), [b[n] for n in a]
    dot = torch.stack([torch.dot(x.reshape(-1), y.reshape(-1)) for x, y in zip(la, lb, strict=True)]).sum()
    na, nb = torch.stack(torch._foreach_norm(la)).norm(), torch.stack(torch._foreach_norm(lb)).norm()
    return float(dot / (na * nb)) if float(na * nb) > 0 else math.nan


@dataclass
class LookaheadResult:
    """What one look-ahead step computed.

    Attributes:
        grads: the update direction to hand to the optimiser, {name: tensor like params[name]}.
        g1: gradient of CE at omega.
        g2: gradient of beta * R (at omega' for first/second order, at omega for "none").
        ce: CE(omega), detached scalar.
        reg: R (unscaled by beta) at the point where g2 was taken, detached scalar.
        cos: cos(g1, g2) over all parameters (Appendix E, Figure 12).
    """

    grads: dict[str, torch.Tensor]
    g1: dict[str, torch.Tensor]
    g2: dict[str, torch.Tensor]
    ce: torch.Tensor
    reg: torch.Tensor
    cos: float


def lookahead_gradients(
    params: Mapping[str, torch.Tensor], ce_loss: LossFn, reg_loss: LossFn, lr: float, beta: float, order: str = "first"
) -> LookaheadResult:
    """Gradients of one look-ahead step (module docstring), as a pure function.

    Args:
        params: omega, {name: tensor requiring grad} (e.g. ``dict(hnet.named_parameters())``).
        ce_loss: omega -> CE on the current batch (a differentiable function of the given tensors,
            e.g. through ``torch.func.functional_call``).
        reg_loss: omega -> R (Eq. 7) on the earlier tasks, evaluated with the given tensors.
        lr: virtual step size (the optimiser's learning rate).
        beta: regularisation coefficient.
        order: ``"first"``, ``"second"`` or ``"none"``.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    ce = ce_loss(params)
    g1 = _grad(ce, params, create_graph=order == "second")
    if order == "none":
        at = params
    elif order == "first":
        at = virtual_step(params, {n: g.detach() for n, g in g1.items()}, lr)
    else:
        at = virtual_step(params, g1, lr)
    reg = reg_loss(at)
    g2 = _grad(beta * reg, params)
    g1 = {n: g.detach() for n, g in g1.items()}
    scale = 1.0 if order == "none" else 0.5
    grads = {n: scale * (g1[n] + g2[n]) for n in params}
    return LookaheadResult(grads, g1, g2, ce.detach(), reg.detach(), cosine(g1, g2))


__all__ = ["ORDERS", "LookaheadResult", "cosine", "lookahead_gradients", "virtual_step"]
