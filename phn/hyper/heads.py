"""Hypernetwork heads: one per generated tensor (Appendix A.1-A.2).

Every head maps the trunk output ``h: (T, h_dim)`` (and the task ids ``(T,)``) to a tensor
``(T, *shape)``, one slice per requested task:

- :class:`ConvHead` (channel-wise generation, Appendix A.2, the authors' convention): a learnable
  lookup table holds one d-dimensional vector ``c_j`` per OUTPUT channel j, and one Linear per layer,
  shared by all output channels, maps ``[h ; c_j]`` (h + d values) to filter j (C_in, k, k).
  Parameters: ``C_out * d + (h + d + 1) * C_in * k * k``.
- :class:`TaskTable`: a per-task lookup table (num_tasks, *shape), used for BN gamma (init 1),
  BN beta (init 0) and the classifier bias (init 0). It ignores h. Parameters: ``num_tasks * numel``.
- :class:`LinearHead`: Linear(h -> numel), used for the classifier weight (C, 8nf).

Initialisation (``init``, :data:`HEAD_INITS`; the paper does not say):

- ``"pytorch"`` (default, the authors' release): every head keeps PyTorch's defaults. The conv heads'
  lookup vectors are ``nn.Embedding`` rows, N(0, 1); the shared Linear(h + d -> C_in*k*k) and the
  classifier's Linear(h -> C*8nf) are ``nn.Linear``: weight and bias uniform in +-1/sqrt(fan_in)
  with fan_in = h + d = 64 and h = 32. A generated filter value is then ``W_c c_j + b + W_h h`` with
  variance about (d + 1) / (3 (h + d)) = 0.17 (std 0.41) for the paper's sizes, 5-11x Kaiming's
  scale; the normalisation after every generated conv removes that scale from the forward pass.
- ``"kaiming"`` (phn's earlier choice, kept to show its effect): lookup vectors N(0, 1), head weights
  N(0, gain^2 / (fan_in * n)) with zero bias, where fan_in is the fan-in of the *generated* layer and
  n the number of unit-variance inputs (d for conv heads, h for the linear head): generated filters
  start with about Kaiming's variance 2 / fan_in, the classifier weight small (std ~0.01).

The scale of the generated weights matters for forgetting, although the forward pass ignores it:
Adam moves every hypernetwork parameter by about lr per step whatever its size, and Eq. 7 penalises
the *absolute* distance of the generated weights, while what an old task's output depends on after a
normalisation is their *direction*. Weights 5-11x smaller turn the same regulariser distance into a
5-11x larger relative change. Measured on Split-FashionMNIST in the book's design page
(``benchmarks/fidelity.py``).
"""

from __future__ import annotations

import math
import typing

import torch
from torch import nn

from phn.config import HeadInit

HEAD_INITS: tuple[str, ...] = typing.get_args(HeadInit)


def _check_init(init: str) -> None:
    if init not in HEAD_INITS:
        raise ValueError(f"init must be one of {list(HEAD_INITS)}, got {init!r}")


class ConvHead(nn.Module):
    """Channel-wise conv weight generator (Appendix A.2).

    Filter j of task t is ``Linear([h_t ; c_j]).view(C_in, k, k)`` with one Linear(h + d -> C_in*k*k)
    shared by all output channels. Its weight W: (F, h + d) (F = C_in*k*k) is stored transposed, as the
    two blocks ``weight_h = W[:, :h].T: (h, F)`` and ``weight_c = W[:, h:].T: (d, F)`` (:attr:`weight`
    rebuilds W),
    because the Linear is affine: ``W [h_t ; c_j] + b = W_h h_t + (W_c c_j + b)``. The second term does
    not depend on the task, so it is computed once per call for all output channels and broadcast over
    the T requested tasks.

    Args:
        shape: (C_out, C_in, k, k) of the generated weight.
        h_dim: trunk output size h.
        lookup_dim: d, size of the per-output-channel lookup vectors.
        init: ``"pytorch"`` (the authors': ``nn.Embedding`` lookup, ``nn.Linear`` weight and bias) or
            ``"kaiming"`` (module docstring).
        gain: gain of the ``"kaiming"`` init (sqrt(2) for convs followed by ReLU-like nonlinearities).
    """

    def __init__(
        self, shape: torch.Size | tuple[int, ...], h_dim: int, lookup_dim: int, init: HeadInit = "pytorch",
        gain: float = math.sqrt(2),
    ) -> None:
        super().__init__()
        _check_init(init)
        self.shape = torch.Size(shape)
        c_out, fan_in = self.shape[0], math.prod(self.shape[1:])
        self.lookup = nn.Parameter(torch.randn(c_out, lookup_dim))  # c_j: (C_out, d), nn.Embedding's N(0, 1)
        if init == "pytorch":  # the authors' nn.Linear(h + d -> F), split into its h and d columns
            linear = nn.Linear(h_dim + lookup_dim, fan_in)
            weight_t, bias = linear.weight.detach().T, linear.bias.detach()  # (h + d, F), (F,)
        else:
            std = gain / math.sqrt(fan_in * lookup_dim)
            weight_t, bias = torch.randn(h_dim + lookup_dim, fan_in) * std, torch.zeros(fan_in)
        self.weight_h = nn.Parameter(weight_t[:h_dim].contiguous())  # W_h^T: (h, F)
        self.weight_c = nn.Parameter(weight_t[h_dim:].contiguous())  # W_c^T: (d, F)
        self.bias = nn.Parameter(bias.clone())  # b: (F,)

    @property
    def weight(self) -> torch.Tensor:
        """The shared Linear's weight W = [W_h, W_c]: (F, h + d)."""
        return torch.cat([self.weight_h, self.weight_c], dim=0).T

    def forward(self, h: torch.Tensor, task_ids: torch.Tensor | None = None) -> torch.Tensor:
        # h: (T, h_dim) -> (T, C_out, C_in, k, k)
        task_part = h @ self.weight_h  # (T, F)
        channel_part = torch.addmm(self.bias, self.lookup, self.weight_c)  # (C_out, F)
        return (task_part[:, None, :] + channel_part[None]).view(h.shape[0], *self.shape)


class TaskTable(nn.Module):
    """Per-task lookup table: row t is task t's tensor (BN gamma/beta, classifier bias).

    Args:
        num_tasks: rows.
        shape: shape of one task's tensor.
        init: constant initial value (1 for gamma, 0 for beta and biases).
    """

    def __init__(self, num_tasks: int, shape: torch.Size | tuple[int, ...], init: float) -> None:
        super().__init__()
        self.shape = torch.Size(shape)
        self.table = nn.Parameter(torch.full((num_tasks, *self.shape), float(init)))

    def forward(self, h: torch.Tensor | None, task_ids: torch.Tensor) -> torch.Tensor:
        # task_ids: (T,) -> (T, *shape)
        return self.table[task_ids]


class LinearHead(nn.Module):
    """Direct generation: Linear(h -> numel) reshaped to ``shape`` (classifier weight (C, 8nf)).

    Args:
        shape: generated shape; ``shape[-1]`` is taken as the fan-in of the generated layer.
        h_dim: trunk output size h.
        init: ``"pytorch"`` (the authors': ``nn.Linear``'s default) or ``"kaiming"`` (module docstring).
        gain: gain of the ``"kaiming"`` init (1 for the classifier).
    """

    def __init__(
        self, shape: torch.Size | tuple[int, ...], h_dim: int, init: HeadInit = "pytorch", gain: float = 1.0
    ) -> None:
        super().__init__()
        _check_init(init)
        self.shape = torch.Size(shape)
        self.linear = nn.Linear(h_dim, self.shape.numel())
        if init == "kaiming":
            nn.init.normal_(self.linear.weight, std=gain / math.sqrt(self.shape[-1] * h_dim))
            nn.init.zeros_(self.linear.bias)

    def forward(self, h: torch.Tensor, task_ids: torch.Tensor | None = None) -> torch.Tensor:
        # h: (T, h_dim) -> (T, *shape)
        return self.linear(h).view(h.shape[0], *self.shape)


def make_head(
    kind: str, shape: torch.Size, num_tasks: int, h_dim: int, lookup_dim: int, init: HeadInit = "pytorch"
) -> nn.Module:
    """The head for a target tensor of the given kind (see ``GeneratedResNet.param_kinds``).

    ``init`` applies to the conv and linear heads; per-task tables start at 1 (norm weights) or 0
    (norm and classifier biases) under both initialisations, as in the authors' release.
    """
    if kind == "conv":
        return ConvHead(shape, h_dim, lookup_dim, init)
    if kind == "linear_weight":
        return LinearHead(shape, h_dim, init)
    if kind == "norm_weight":
        return TaskTable(num_tasks, shape, 1.0)
    if kind in ("norm_bias", "linear_bias"):
        return TaskTable(num_tasks, shape, 0.0)
    raise ValueError(f"no head for parameter kind {kind!r}")


__all__ = ["HEAD_INITS", "ConvHead", "HeadInit", "LinearHead", "TaskTable", "make_head"]
