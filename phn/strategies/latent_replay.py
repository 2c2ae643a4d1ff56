"""Latent replay LR-k (Pellegrini et al., 2020), as the paper's baseline (Section 4, Table 2, Table 6).

Experience 1 trains the whole slim ResNet-18. Then the prefix (stem + stages 1..k; nothing for k = 0)
is frozen, its weights AND its BN running statistics: the prefix stays in eval mode (the authors'
release lets frozen BN statistics drift, which is a bug). Before freezing, the running statistics of
the whole network are recomputed exactly on experience 1's training data, as
:class:`~phn.strategies.partial_hn.PartialHN` does for its prefix. A class-balanced buffer keeps latent
activations at depth k (balanced by global class, not by the per-task local label). From experience 2
the loss is ``CE(current batch) + c * CE(replay batch)``, each replayed latent scored by its own task's
head; ``c = 0`` disables replay (the paper uses c = 0 and c = 1).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from phn.models.resnet import freeze_, num_prefix_parts, recalibrate_bn_
from phn.strategies.base import autocast, full_precision
from phn.strategies.naive import Naive


class LatentBuffer:
    """Class-balanced buffer of latent activations.

    Every global class seen so far gets ``capacity // num_classes`` slots (the remainder goes to the
    earliest classes); when new classes arrive, old classes keep the first samples of their random
    selection. Tensors: ``latents`` (M, *latent_shape), ``labels`` (M,) local labels, ``tasks`` (M,),
    ``classes`` (M,) global class ids, with M <= capacity.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"buffer capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self.latents = torch.empty(0)
        self.labels = torch.empty(0, dtype=torch.long)
        self.tasks = torch.empty(0, dtype=torch.long)
        self.classes = torch.empty(0, dtype=torch.long)

    def __len__(self) -> int:
        return int(self.labels.numel())

    def quotas(self, classes: list[int]) -> dict[int, int]:
        """Slots per global class, in order of first appearance."""
        base, rest = divmod(self.capacity, max(len(classes), 1))
        return {c: base + (1 if i < rest else 0) for i, c in enumerate(classes)}

    def seen_classes(self) -> list[int]:
        return list(dict.fromkeys(self.classes.tolist()))

    def trim(self, quotas: dict[int, int]) -> None:
        """Keep at most ``quotas[c]`` (the first) stored samples of every class c."""
        keep = torch.zeros(len(self), dtype=torch.bool)
        for c, quota in quotas.items():
            keep[torch.nonzero(self.classes == c).flatten()[:quota]] = True
        self.latents, self.labels = self.latents[keep], self.labels[keep]
        self.tasks, self.classes = self.tasks[keep], self.classes[keep]

    def add(self, latents: torch.Tensor, labels: torch.Tensor, tasks: torch.Tensor, classes: torch.Tensor) -> None:
        latents = full_precision(latents.detach()).cpu()
        self.latents = latents if len(self) == 0 else torch.cat([self.latents, latents])
        self.labels = torch.cat([self.labels, labels.cpu()])
        self.tasks = torch.cat([self.tasks, tasks.cpu()])
        self.classes = torch.cat([self.classes, classes.cpu()])

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n`` random entries (with replacement): latents, local labels, task ids."""
        idx = torch.randint(len(self), (n,), generator=generator)
        return self.latents[idx], self.labels[idx], self.tasks[idx]

    def state_dict(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "latents": self.latents, "labels": self.labels,
                "tasks": self.tasks, "classes": self.classes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.capacity = state["capacity"]
        self.latents, self.labels = state["latents"], state["labels"]
        self.tasks, self.classes = state["tasks"], state["classes"]


class LatentReplay(Naive):
    """LR-k: frozen prefix after experience 1 and replay of stored latents.

    Args:
        buffer_size: latent buffer capacity (paper: 200 for CIFAR-100, 400 for TinyImageNet).
        replay_coef: c, the weight of the replay cross-entropy (paper: 0 or 1).
        **kwargs: as :class:`~phn.strategies.naive.Naive`; ``model_cfg.freeze_depth`` is k.
    """

    name = "lr"

    def __init__(self, *args: Any, buffer_size: int = 200, replay_coef: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if replay_coef < 0:
            raise ValueError(f"replay_coef must be >= 0, got {replay_coef}")
        self.depth = num_prefix_parts(self.model_cfg.freeze_depth)
        self.prefix, _ = self.model.split(self.model_cfg.freeze_depth)
        self.buffer = LatentBuffer(buffer_size)
        self.replay_coef = replay_coef
        self.frozen = False

    def set_train_mode(self) -> None:
        self.model.train()
        if self.frozen:
            self.prefix.eval()  # frozen BN statistics must not drift

    def loss(self, x: torch.Tensor, y: torch.Tensor, task_id: int) -> tuple[torch.Tensor, dict[str, float]]:
        if not self.frozen:
            return super().loss(x, y, task_id)
        z = self.frozen_latents(x)  # (B, *latent_shape), no autograd through the frozen prefix
        replay = self.replay_coef > 0 and len(self.buffer) > 0
        with autocast(self.device, self.amp):
            if replay:
                zr, yr, tr = (t.to(self.device) for t in self.buffer.sample(x.shape[0], self.generator))
                z = torch.cat([z, zr.to(z.dtype)])
            feats = full_precision(self.model.features(z, self.depth, 5).mean(dim=(2, 3)))  # (B [+ B], 8nf)
        ce = F.cross_entropy(self.model.classifier(feats[: x.shape[0]], task_id), y)
        if not replay:
            return ce, {"ce": ce.item()}
        replay_feats = feats[x.shape[0]:]
        replay_ce = torch.zeros((), device=self.device)
        for t in tr.unique().tolist():
            mask = tr == t
            replay_ce = replay_ce + F.cross_entropy(self.model.classifier(replay_feats[mask], t), yr[mask],
                                                    reduction="sum")
        replay_ce = replay_ce / tr.numel()
        return ce + self.replay_coef * replay_ce, {"ce": ce.item(), "replay_ce": replay_ce.item()}

    @torch.no_grad()
    def frozen_latents(self, x: torch.Tensor) -> torch.Tensor | None:
        """Latents at depth k once the prefix is frozen (eval mode), else None."""
        if not self.frozen:
            return None
        self.prefix.eval()
        with autocast(self.device, self.amp):
            return self.prefix(self.as_input(x))

    @torch.no_grad()
    def predict_latent(self, z: torch.Tensor, task_id: int) -> torch.Tensor:
        """Logits (B, C) of head ``task_id`` from latents z at depth k."""
        self.model.eval()
        with autocast(self.device, self.amp):
            return full_precision(self.model.forward_from(z, self.depth, task_id))

    def end_experience(self, experience: Any) -> None:
        if not self.frozen:
            if self.model_cfg.prefix_norm == "running":
                # exact statistics of experience 1, as PartialHN, for the WHOLE network: the state after
                # experience 1 is then the same at every freeze depth (with c = 0), so a depth sweep can
                # train experience 1 once (``phn.train.run(start_from=...)``)
                with autocast(self.device, self.amp):
                    recalibrate_bn_(self.model, (self.as_input(x) for x, _ in self.loader(experience.train)))
            freeze_(self.prefix)
            self.frozen = True
        if self.replay_coef > 0:  # c = 0: nothing is ever replayed, so nothing is stored
            self.fill_buffer(experience)

    @torch.no_grad()
    def fill_buffer(self, experience: Any) -> None:
        """Make room for the experience's classes and store latents of random samples of each."""
        from phn.data import dataset_targets

        local = torch.as_tensor(dataset_targets(experience.train), dtype=torch.long)
        classes = torch.as_tensor(experience.classes, dtype=torch.long)[local]  # global class per sample
        quotas = self.buffer.quotas(self.buffer.seen_classes() + list(dict.fromkeys(classes.tolist())))
        self.buffer.trim(quotas)
        chosen = []
        for c in dict.fromkeys(classes.tolist()):
            idx = torch.nonzero(classes == c).flatten()
            chosen.append(idx[torch.randperm(idx.numel(), generator=self.generator)[: quotas[c]]])
        index = torch.cat(chosen).tolist() if chosen else []
        if not index:
            return
        subset = torch.utils.data.Subset(experience.train, index)
        latents = [full_precision(self.frozen_latents(x)).cpu() for x, _ in self.loader(subset)]
        self.buffer.add(torch.cat(latents), local[index], torch.full((len(index),), experience.task_id), classes[index])

    def stored_floats(self) -> int:
        return int(self.buffer.latents.numel())

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "buffer": self.buffer.state_dict(), "frozen": self.frozen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.buffer.load_state_dict(state["buffer"])
        self.frozen = state["frozen"]
        if self.frozen:
            freeze_(self.prefix)
