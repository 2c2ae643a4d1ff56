"""The authors' per-sample HN-k training step, re-implemented on phn's modules for side-by-side timing.

Their ``HyperAlgRegNM.training_epoch`` (Avalanche 0.4 + functorch; first-order look-ahead as in their
run scripts) does, on every step from experience 2 on, with B the batch size and t the current task:

1. functional copies of the hypernetwork, the frozen prefix and the target network
   (``functorch.make_functional[_with_buffers]``, which ``copy.deepcopy`` each module), every step;
2. weights generated PER SAMPLE: the hypernetwork runs on the batch's task ids, one per sample (B
   identical rows); a conv head is their ``GenHead``, ``Linear(cat[h repeated C_out times ; lookup
   repeated B times])`` on (B, C_out, h + d) inputs (:class:`PerSampleGenerator`);
3. the prefix on the batch (its parameters do not require grad: no graph), then the target once per
   sample under ``vmap`` on that sample's weights; its BN layers keep no running statistics, so each
   sample is normalised alone;
4. g1 = grad CE (``retain_graph=True``, ``create_graph=False``), omega' = omega - lr * g1;
5. up to ``reg_tasks`` earlier tasks drawn with ``randperm(t)``; for each one, in a Python loop, the
   snapshot hypernetwork (a deep copy taken after the previous experience) regenerates H*(e_j) and the
   copy generates H_omega'(e_j), both flattened with ``parameters_to_vector``;
   R = mean over those tasks of sum((H* - H)^2);
6. g2 = grad(beta * R) (an extra backward, for the logged cosine), ``cos(g1, g2).item()``;
7. ``(CE + beta * R).backward()`` (CE and R backpropagated a second time), the copy's gradients
   moved onto the hypernetwork (``apply_grad``), Adam (PyTorch's default implementation) steps.

The update direction is g1 + g2; phn's :func:`phn.optim.lookahead.lookahead_gradients` returns
(g1 + g2) / 2 (Algorithm 1), the same Adam update up to epsilon. ``tests/benchmarks`` checks that
both paths give the same loss, gradients and cosine in float64.

Not reproduced: Avalanche's per-iteration callbacks and metric plugins (so this path is, if anything,
faster than their code), and their global-RNG task draw (a local generator here; same distribution).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap
from torch.nn.utils import parameters_to_vector

from phn.hyper.heads import ConvHead, LinearHead, TaskTable
from phn.hyper.hypernet import HyperNetwork, head_key
from phn.models.target import GeneratedResNet
from phn.strategies.partial_hn import PartialHN


class PerSampleGenerator(nn.Module):
    """phn's hypernetwork computed the way the authors' ``WeightGenerator`` computes it.

    Same parameters and the same values as ``hnet(ids)``; only the computation differs: a conv head
    applies its shared Linear(h + d -> C_in*k*k) to the concatenated, repeated inputs (B, C_out, h + d)
    instead of splitting the task-independent part off.

    Args:
        hnet: the hypernetwork whose parameters are used (registered as ``hnet.<name>``).
    """

    def __init__(self, hnet: HyperNetwork) -> None:
        super().__init__()
        self.hnet = hnet

    def forward(self, ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """ids: (B,) task ids, one per sample -> {name: (B, *shape)} in ``param_shapes`` order."""
        h = self.hnet.trunk(self.hnet.embedding(ids))  # (B, h)
        n = ids.shape[0]
        out: dict[str, torch.Tensor] = {}
        for name, shape in self.hnet.param_shapes.items():
            head = self.hnet.heads[head_key(name)]
            if isinstance(head, ConvHead):  # their GenHead
                c_out = shape[0]
                lookup = F.embedding(torch.arange(c_out, device=ids.device), head.lookup)  # emb1(arange): (C_out, d)
                x_cat = torch.cat([h.unsqueeze(1).repeat(1, c_out, 1), lookup.unsqueeze(0).repeat(n, 1, 1)], dim=2)
                out[name] = F.linear(x_cat, head.weight, head.bias).view(n, *shape)  # (B, C_out, C_in, k, k)
            elif isinstance(head, LinearHead):  # their LinearLayer
                out[name] = head.linear(h).view(n, *shape)
            elif isinstance(head, TaskTable):  # their LinHead
                out[name] = head.table[ids]
            else:
                raise TypeError(f"unknown head {type(head).__name__} for {name}")
        return out


@dataclass
class AuthorsGradients:
    """One step of the authors' path, before Adam.

    Attributes:
        loss: CE + beta * R (detached scalar).
        ce: CE at omega. reg: R at omega' (unscaled by beta).
        grads: {hnet parameter name: g1 + g2}, what their ``loss.backward()`` leaves on the copy.
        cos: cos(g1, g2) over all parameters.
    """

    loss: torch.Tensor
    ce: torch.Tensor
    reg: torch.Tensor
    grads: dict[str, torch.Tensor]
    cos: float


class AuthorsStep:
    """The authors' per-sample training step (module docstring) on a prefix and a hypernetwork.

    Args:
        prefix: the frozen prefix g_phi (its parameters must not require grad).
        hnet: the hypernetwork (updated in place by :meth:`train_step`).
        target: the generated part with batch-statistics BN (``GeneratedResNet(norm="batch")``), run per
            sample under ``vmap``.
        lr: Adam's learning rate, also the look-ahead's virtual step.
        beta: regulariser coefficient. reg_tasks: earlier tasks drawn per step (their 20).
        seed: seed of the local generator drawing the earlier tasks.
    """

    def __init__(self, prefix: nn.Module, hnet: HyperNetwork, target: GeneratedResNet, lr: float = 1e-3,
                 beta: float = 0.5, reg_tasks: int = 20, seed: int = 0) -> None:
        self.prefix, self.hnet, self.target = prefix, hnet, target
        self.beta, self.reg_tasks = beta, reg_tasks
        self.optimizer = torch.optim.Adam(hnet.parameters(), lr=lr)  # PyTorch's default implementation, as theirs
        self.generator = torch.Generator().manual_seed(seed)
        self.snapshot: PerSampleGenerator | None = None

    @classmethod
    def from_strategy(cls, strategy: PartialHN, seed: int = 0) -> AuthorsStep:
        """Share ``strategy``'s prefix and hypernetwork (build it with ``prefix_norm="batch"`` for their
        prefix); the target is a batch-statistics copy of ``strategy.target``."""
        mc, hc = strategy.model_cfg, strategy.hyper_cfg
        ref = next(strategy.hnet.parameters())
        target = GeneratedResNet(mc.freeze_depth, strategy.num_classes, mc.nf, norm="batch").to(ref.device, ref.dtype)
        reg_tasks = hc.reg_tasks if hc.reg_tasks > 0 else strategy.num_tasks
        return cls(strategy.prefix, strategy.hnet, target, strategy.lr, hc.beta, reg_tasks, seed)

    def end_experience(self) -> None:
        """Their ``_after_training_exp``: ``prev_model = deepcopy(model)``."""
        self.snapshot = PerSampleGenerator(copy.deepcopy(self.hnet))

    def task_distance(self, task: int, generator: nn.Module, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Their ``hnet_task_diff_norm``: sum((H*(e_j) - H_params(e_j))^2) for one earlier task j.

        Args:
            task: j. generator: a :class:`PerSampleGenerator`; params: its parameters to use
                (``hnet.<name>`` keys, e.g. the virtual omega').
        """
        if self.snapshot is None:
            raise RuntimeError("no snapshot: call end_experience() after the previous experience")
        ids = torch.tensor([task], device=next(self.hnet.parameters()).device)
        previous = parameters_to_vector(list(self.snapshot(ids).values())).detach()
        current = parameters_to_vector(list(functional_call(generator, dict(params), (ids,)).values()))
        return (previous - current).pow(2).sum()

    def gradients(self, x: torch.Tensor, y: torch.Tensor, task_id: int) -> AuthorsGradients:
        """Steps 1-7 of the module docstring up to ``loss.backward()``: x (B, 3, H, W), y (B,)."""
        if task_id < 1:
            raise ValueError("the per-sample path times experiences with an earlier task (task_id >= 1)")
        generator = PerSampleGenerator(copy.deepcopy(self.hnet))  # make_functional_with_buffers(weight_generator)
        prefix = copy.deepcopy(self.prefix)  # make_functional(feat_extractor_sf)
        target = copy.deepcopy(self.target)  # make_functional(feat_extractor_sl)
        params = dict(generator.hnet.named_parameters())
        ids = torch.full((x.shape[0],), task_id, dtype=torch.long, device=x.device)  # mb_task_id
        omega = generator(ids)  # {name: (B, *shape)}
        z = prefix(x)  # (B, C_k, H_k, W_k); frozen parameters: no graph

        def one_sample(weights: dict[str, torch.Tensor], z_i: torch.Tensor) -> torch.Tensor:
            return functional_call(target, weights, (z_i.unsqueeze(0),)).squeeze(0)  # (C,)

        ce = F.cross_entropy(vmap(one_sample)(omega, z), y)
        lr = self.optimizer.param_groups[0]["lr"]
        g1 = torch.autograd.grad(ce, list(params.values()), retain_graph=True)
        virtual = {f"hnet.{n}": p - lr * g for (n, p), g in zip(params.items(), g1, strict=True)}
        tasks = torch.randperm(task_id, generator=self.generator)[: self.reg_tasks].tolist()
        distances = [self.task_distance(j, generator, virtual) for j in tasks]
        reg = sum(distances) / len(distances)
        g2 = torch.autograd.grad(self.beta * reg, list(params.values()), retain_graph=True)
        cos = F.cosine_similarity(parameters_to_vector(g1), parameters_to_vector(g2), dim=0).item()
        loss = ce + self.beta * reg
        loss.backward()
        grads = {n: p.grad for n, p in params.items()}
        return AuthorsGradients(loss.detach(), ce.detach(), reg.detach(), grads, cos)

    def train_step(self, x: torch.Tensor, y: torch.Tensor, task_id: int) -> dict[str, float]:
        """One full step: gradients, ``apply_grad`` onto the hypernetwork, Adam."""
        self.optimizer.zero_grad()
        res = self.gradients(x, y, task_id)
        for name, p in self.hnet.named_parameters():
            p.grad = res.grads[name]
        self.optimizer.step()
        return {"loss": res.loss.item(), "ce": res.ce.item(), "reg": res.reg.item(), "cos": res.cos}


__all__ = ["AuthorsGradients", "AuthorsStep", "PerSampleGenerator"]
