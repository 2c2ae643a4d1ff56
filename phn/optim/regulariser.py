"""Output regulariser of the hypernetwork (Eq. 7, von Oswald et al. 2019).

After each experience the hypernetwork's outputs H*(e_j) for every task seen so far are recorded as
constants (detached tensors, no model copy). While training task i::

    R = 1/|S| * sum_{j in S} sum_{tensors} || H(e_j) - H*(e_j) ||_2^2,      S subset of {j != i seen}

where S holds all earlier tasks, or ``reg_tasks`` of them drawn without replacement from a local
``torch.Generator`` (its state is part of :meth:`OutputRegulariser.state_dict`). The current outputs
H(e_S) come from ONE batched hypernetwork call over the stacked ids, optionally on virtual
parameters (the look-ahead's omega').

Differences from the authors' code: they keep a snapshot copy of the hypernetwork and regenerate
H*(e_j) every step; recording the outputs gives the same targets without a second network pass
(memory: ``num_tasks_seen * floats_per_task``, see :meth:`OutputRegulariser.num_floats`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call


def output_distance(current: Mapping[str, torch.Tensor], recorded: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Mean over tasks of the summed squared distance over all generated tensors.

    Args:
        current: {name: (n, *shape)} outputs of the hypernetwork for n tasks.
        recorded: {name: (n, *shape)} recorded outputs for the same tasks.

    Returns:
        Scalar ``1/n * sum_j sum_name ||current[name][j] - recorded[name][j]||^2``.
    """
    n = next(iter(current.values())).shape[0]
    total = sum(((current[k] - recorded[k]) ** 2).sum() for k in current)
    return total / n  # type: ignore[return-value]


def tensor_group(name: str, ndim: int) -> str:
    """A readable group for a generated tensor: ``"<part> conv"`` for conv filters (4-d),
    ``"<part> norm"`` for normalisation gamma/beta, ``"classifier"`` for the classifier weight and bias.

    Example:
        >>> tensor_group("stage4.0.conv1.weight", 4), tensor_group("stage4.0.bn1.bias", 1)
        ('stage4 conv', 'stage4 norm')
    """
    part = name.split(".")[0]
    if part == "classifier":
        return part
    return f"{part} {'conv' if ndim == 4 else 'norm'}"


class OutputRegulariser:
    """Records H*(e_j) and evaluates R (Eq. 7) for the tasks before the current one.

    Args:
        reg_tasks: number of earlier tasks sampled per step (authors: 20); 0 means all.
        seed: seed of the local generator used for sampling.
    """

    def __init__(self, reg_tasks: int = 20, seed: int = 0) -> None:
        self.reg_tasks = reg_tasks
        self.generator = torch.Generator().manual_seed(seed)
        self.task_ids: torch.Tensor = torch.zeros(0, dtype=torch.long)  # (N,) recorded task ids
        self.recorded: dict[str, torch.Tensor] = {}  # {name: (N, *shape)}

    @torch.no_grad()
    def record(self, hnet: nn.Module, task_ids: Sequence[int]) -> None:
        """Replace the records by the current outputs for ``task_ids`` (every task seen so far)."""
        device = next(hnet.parameters()).device
        self.task_ids = torch.as_tensor(list(task_ids), dtype=torch.long, device=device)
        self.recorded = {k: v.detach().clone() for k, v in hnet(self.task_ids).items()}

    def sample(self, current_task: int) -> torch.Tensor | None:
        """Row indices (into the records) of the earlier tasks to compare this step, or None if none.

        All rows except ``current_task``'s; if more than ``reg_tasks`` (> 0), a random subset of that
        size drawn from the local generator.
        """
        rows = (self.task_ids != current_task).nonzero().flatten()  # (M,)
        if rows.numel() == 0:
            return None
        if 0 < self.reg_tasks < rows.numel():
            pick = torch.randperm(rows.numel(), generator=self.generator)[: self.reg_tasks]
            rows = rows[pick.to(rows.device)]
        return rows

    def penalty(
        self, hnet: nn.Module, rows: torch.Tensor, params: Mapping[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """R over the recorded rows ``rows``: one hypernetwork call on the stacked task ids.

        Args:
            hnet: the hypernetwork.
            rows: (n,) indices into the records (from :meth:`sample`).
            params: hypernetwork parameters to use instead of its own (e.g. virtual omega').
        """
        ids = self.task_ids[rows]  # (n,)
        current = hnet(ids) if params is None else functional_call(hnet, dict(params), (ids,))
        return output_distance(current, {k: v[rows] for k, v in self.recorded.items()})

    @torch.no_grad()
    def drift(self, hnet: nn.Module) -> list[dict[str, float | int | str]]:
        """How far the current outputs H(e_j) are from the records H*(e_j), for every recorded task.

        Returns one row per (task, tensor group): ``task``, ``group`` (:func:`tensor_group`),
        ``sq_distance`` = sum ||H(e_j) - H*(e_j)||^2 over the group's tensors (the group's share of
        Eq. 7's term for task j) and ``sq_norm`` = sum ||H*(e_j)||^2, so that
        ``sqrt(sq_distance / sq_norm)`` is the relative change of the group's generated weights.
        Empty before anything is recorded.
        """
        if not self.recorded:
            return []
        current = hnet(self.task_ids)
        rows: dict[tuple[int, str], dict[str, float | int | str]] = {}
        for name, recorded in self.recorded.items():
            distance = ((current[name] - recorded) ** 2).flatten(1).sum(1).tolist()  # (N,)
            norm = (recorded**2).flatten(1).sum(1).tolist()
            group = tensor_group(name, recorded.dim() - 1)
            for task, d, r in zip(self.task_ids.tolist(), distance, norm, strict=True):
                row = rows.setdefault((task, group), {"task": task, "group": group, "sq_distance": 0.0, "sq_norm": 0.0})
                row["sq_distance"] += d  # type: ignore[operator]
                row["sq_norm"] += r  # type: ignore[operator]
        return list(rows.values())

    def num_floats(self) -> int:
        """Number of recorded floats."""
        return sum(v.numel() for v in self.recorded.values())

    def state_dict(self) -> dict[str, Any]:
        return {
            "reg_tasks": self.reg_tasks, "generator": self.generator.get_state(),
            "task_ids": self.task_ids, "recorded": dict(self.recorded),
        }

    def load_state_dict(self, state: Mapping[str, Any], device: torch.device | str | None = None) -> None:
        """Restore :meth:`state_dict`; ``device`` moves the records (checkpoints are loaded on CPU)."""
        self.reg_tasks = int(state["reg_tasks"])
        self.generator.set_state(state["generator"].cpu())
        self.task_ids = state["task_ids"].to(device) if device is not None else state["task_ids"]
        self.recorded = {k: v.to(device) if device is not None else v for k, v in state["recorded"].items()}


__all__ = ["OutputRegulariser", "output_distance", "tensor_group"]
