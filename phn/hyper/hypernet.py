"""The task-conditioned hypernetwork H_psi (Appendix A, F): omega_t = H(e_t).

    task ids (T,) -> embedding table e: (T, 32) -> MLP trunk 32 -> 50 -> 32 (ReLU after every layer,
    including the last) -> h: (T, 32) -> one head per generated tensor -> {name: (T, *shape)}

One call generates the weights of several tasks at once (the regulariser, Eq. 7, is one batched call).

Design choices (documented deviations / decisions):
- The trunk ends with a ReLU, as the authors' MLP does (every hidden layer is followed by ReLU).
- Initialisation follows the authors' release by default: every layer keeps PyTorch's defaults
  (embedding N(0, 1), trunk and heads ``nn.Linear``'s uniform +-1/sqrt(fan_in) for weight and
  bias, per-task tables 1 / 0); ``init="kaiming"`` rescales the conv and classifier heads instead
  (see :mod:`phn.hyper.heads`, which explains why the scale of the generated weights sets how much
  an old task forgets).
- The trunk keeps PyTorch's default Linear init under both head inits, so h is small at first
  (RMS ~0.1). This matters: every Adam step moves the h-dependent part ``W_h h`` of a conv head by
  about ``lr * sum|h|`` in the same direction for ALL output channels of the layer. With a
  He-initialised trunk (RMS(h) ~ 1) HN-F reached 23 % on a 10-class toy task after 40 steps where the
  default init reached 100 % (and a plain ResNet with the same per-sample norm 100 %).
- Task embeddings are N(0, 1); :meth:`HyperNetwork.init_task` copies the previous task's embedding
  into a new task's row (the authors' convention). Per-task tables (BN gamma/beta, classifier bias)
  are NOT copied: a new task starts from gamma = 1, beta = 0, bias = 0.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from phn.config import HyperConfig
from phn.hyper.heads import HeadInit, make_head


def head_key(name: str) -> str:
    """ModuleDict key of the head generating target tensor ``name`` ('.' is not allowed in keys)."""
    return name.replace(".", "-")


class HyperNetwork(nn.Module):
    """Embedding table + MLP trunk + per-tensor heads.

    Args:
        param_shapes: ordered target tensor names -> shapes (``GeneratedResNet.param_shapes``).
        param_kinds: names -> head kind (``GeneratedResNet.param_kinds``).
        num_tasks: rows of the embedding table and of the per-task tables.
        embedding_dim: task embedding size (paper: 32).
        hidden: trunk widths after the embedding (paper: 50, 32); the last one is h.
        lookup_dim: d of the conv heads (paper: 32).
        init: initialisation of the conv and classifier heads, ``"pytorch"`` (the authors') or
            ``"kaiming"`` (:mod:`phn.hyper.heads`).
    """

    def __init__(
        self,
        param_shapes: Mapping[str, torch.Size],
        param_kinds: Mapping[str, str],
        num_tasks: int,
        embedding_dim: int = 32,
        hidden: Sequence[int] = (50, 32),
        lookup_dim: int = 32,
        init: HeadInit = "pytorch",
    ) -> None:
        super().__init__()
        self.num_tasks = num_tasks
        self.param_shapes = OrderedDict(param_shapes)
        self.embedding = nn.Embedding(num_tasks, embedding_dim)
        nn.init.normal_(self.embedding.weight)
        layers: list[nn.Module] = []
        width = embedding_dim
        for out in hidden:
            layers += [nn.Linear(width, out), nn.ReLU()]  # PyTorch's default init (see module docstring)
            width = out
        self.trunk = nn.Sequential(*layers)
        self.h_dim = width
        self.heads = nn.ModuleDict(
            (head_key(n), make_head(param_kinds[n], s, num_tasks, width, lookup_dim, init))
            for n, s in self.param_shapes.items()
        )

    @classmethod
    def for_target(cls, target: nn.Module, num_tasks: int, cfg: HyperConfig | None = None) -> HyperNetwork:
        """Build the hypernetwork for a target exposing ``param_shapes`` and ``param_kinds``."""
        cfg = cfg or HyperConfig()
        return cls(target.param_shapes, target.param_kinds, num_tasks, cfg.embedding_dim, cfg.hidden, cfg.lookup_dim,
                   cfg.init)

    def forward(self, task_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """Generate omega for several tasks.

        Args:
            task_ids: (T,) long tensor.

        Returns:
            {name: (T, *param_shapes[name])} for every generated tensor, in ``param_shapes`` order.
        """
        h = self.trunk(self.embedding(task_ids))  # (T, h_dim)
        return {name: self.heads[head_key(name)](h, task_ids) for name in self.param_shapes}

    def task_weights(self, task_id: int) -> dict[str, torch.Tensor]:
        """omega for one task: {name: param_shapes[name]} (one hypernetwork call)."""
        ids = torch.tensor([task_id], device=self.embedding.weight.device)
        return {name: w[0] for name, w in self(ids).items()}

    @torch.no_grad()
    def init_task(self, task_id: int, source: int | None = None) -> None:
        """Initialise task ``task_id``'s embedding as a copy of task ``source``'s (default: the
        previous task, ``task_id - 1``; no-op for task 0 without a source)."""
        source = task_id - 1 if source is None else source
        if 0 <= source != task_id:
            self.embedding.weight[task_id].copy_(self.embedding.weight[source])

    def num_generated(self) -> int:
        """Floats generated per task."""
        return sum(s.numel() for s in self.param_shapes.values())

    def parameter_groups(self) -> dict[str, int]:
        """Parameter counts: ``trunk`` (embedding table + MLP) and one entry per target part
        (``stem``, ``stage1`` .. ``stage4``, ``classifier``) summing its heads."""
        counts = {"trunk": sum(p.numel() for m in (self.embedding, self.trunk) for p in m.parameters())}
        for name in self.param_shapes:
            part = name.split(".")[0]
            counts[part] = counts.get(part, 0) + sum(p.numel() for p in self.heads[head_key(name)].parameters())
        return counts


__all__ = ["HyperNetwork", "head_key"]
