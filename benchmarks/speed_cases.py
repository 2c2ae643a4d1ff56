"""The configurations ``python -m benchmarks.speed`` times, and the step each one repeats.

A :class:`Case` is plain data (it travels to child processes as JSON); :func:`build` turns it into a
:class:`Runner` whose ``step()`` is the unit that is timed:

* ``train``: one training step at experience e (e - 1 earlier tasks recorded) on a random batch:
  ``phn`` (``PartialHN.train_step``), ``per-sample`` (the authors' path,
  :mod:`benchmarks.authors_path`) or ``ceiling`` (:class:`Ceiling`: the same layers trained directly);
* ``lookahead``: ``PartialHN.train_step`` with look-ahead ``none`` / ``first`` / ``second``;
* ``regulariser``: R (Eq. 7) and its gradient over n earlier tasks: ``batched`` (phn's one call),
  ``loop`` (one hypernetwork call per task, recorded targets) or ``snapshot-loop`` (the authors':
  one call per task and the snapshot network regenerating each target);
* ``data``: one epoch of a Split-CIFAR100-sized experience (5 classes x 500 images, synthetic uint8
  images through the real :class:`phn.data.ClassSubset` and train transform): ``dataloader``
  (per-sample transforms, torch DataLoader, 0 workers), ``device-batches``
  (``phn.data.batched.DeviceBatches``) and ``device-batches+setup`` (built anew each epoch).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from benchmarks.authors_path import AuthorsStep, PerSampleGenerator
from phn.config import HyperConfig, ModelConfig
from phn.models.resnet import build_prefix, freeze_
from phn.models.target import GeneratedResNet
from phn.optim.regulariser import output_distance
from phn.strategies.base import autocast
from phn.strategies.partial_hn import PartialHN

NUM_CLASSES = 5  # Split-CIFAR100: 5 classes per experience
DATA_CLASSES, DATA_PER_CLASS = 5, 500  # one Split-CIFAR100 experience's training set
TUNED_MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "68719476736"}


def model_name(k: int) -> str:
    return "HN-F" if k == 0 else f"HN-{k}"


@dataclass(frozen=True)
class Case:
    """One configuration.

    Attributes:
        section: ``train``, ``lookahead``, ``regulariser``, ``data`` or ``compile``.
        method: what is timed (module docstring).
        model: freeze depth k (-1: none).
        experience: e (e - 1 earlier tasks); 0 where it does not apply.
        batch: images per step (0: not a batch).
        option: look-ahead order, number of earlier tasks (regulariser), ...
        allocator: ``default`` or ``tuned`` (:data:`TUNED_MALLOC`; runs in a child process).
        hw: image side. data_per_class: images per class of the data section.
        amp: bf16 autocast for phn and the ceiling on CUDA (phn's runner default there; ignored on CPU).
    """

    section: str
    method: str
    model: int = -1
    experience: int = 0
    batch: int = 0
    option: str = ""
    allocator: str = "default"
    hw: int = 32
    data_per_class: int = DATA_PER_CLASS
    amp: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Case:
        return cls(**json.loads(text))

    @property
    def label(self) -> str:
        parts = [self.section, self.method + ("" if self.allocator == "default" else f"[{self.allocator} malloc]")]
        parts += [model_name(self.model)] if self.model >= 0 else []
        parts += [f"exp {self.experience}"] if self.experience else []
        parts += [f"batch {self.batch}"] if self.batch else []
        parts += [self.option] if self.option else []
        parts += ["bf16 autocast"] if self.amp else []
        return " / ".join(parts)


@dataclass
class Runner:
    """``step()`` is timed; ``images`` it processes (0: report milliseconds only)."""

    step: Callable[[], object]
    images: int
    keep: object = None  # whatever must stay alive


class Ceiling:
    """The same layers trained directly: no hypernetwork, regulariser or look-ahead.

    Frozen prefix of depth k (eval mode, run under ``no_grad``) + the generated part's layers
    (``GeneratedResNet(k)``, per-sample norm as in phn) with their own parameters, trained with Adam
    (fused, lr 1e-3) on channels-last activations; ``loss.item()`` every step as every strategy logs it.

    Args:
        freeze_depth: k. num_classes: C. device: where it runs. nf: width. seed: initialisation.
        amp: bf16 autocast of prefix and suffix on CUDA, as ``PartialHN(amp=True)`` (ignored on CPU).
    """

    def __init__(self, freeze_depth: int, num_classes: int, device: torch.device | str, nf: int = 20,
                 lr: float = 1e-3, seed: int = 0, amp: bool = False) -> None:
        self.device = torch.device(device)
        self.amp = amp and self.device.type == "cuda"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.prefix = freeze_(build_prefix(freeze_depth, nf).to(self.device))
            self.suffix = GeneratedResNet(freeze_depth, num_classes, nf).to(self.device).requires_grad_(True)
        self.forward: Callable[[torch.Tensor], torch.Tensor] = self.suffix  # replaced by a compiled one in the trial
        self.optimizer = torch.optim.Adam(self.suffix.parameters(), lr=lr, fused=True)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        x = x.to(self.device, memory_format=torch.channels_last)
        with torch.no_grad(), autocast(self.device, self.amp):
            z = self.prefix(x)  # (B, C_k, H_k, W_k)
        with autocast(self.device, self.amp):
            logits = self.forward(z).float()
        loss = F.cross_entropy(logits, y.to(self.device))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item()


def random_batch(batch: int, hw: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, hw, hw, generator=g)
    return x.to(device), torch.randint(0, NUM_CLASSES, (batch,), generator=g).to(device)


def enter_experience(strategy: PartialHN, experience: int, x: torch.Tensor, y: torch.Tensor,
                     after_end: Callable[[], None] | None = None) -> int:
    """Bring ``strategy`` to experience e: one step on task 0, tasks 0..e-2 recorded (``after_end`` is
    called after each), experience e begun. Returns its task id e - 1."""
    for task in range(experience - 1):
        strategy.begin_experience(task)
        if task == 0:
            strategy.train_step(x, y, 0)
        strategy.end_experience(task)  # freezes the prefix after the first; records H(e_j)
        if after_end is not None:
            after_end()
    strategy.begin_experience(experience - 1)
    return experience - 1


def make_strategy(case: Case, device: torch.device, prefix_norm: str = "running", lookahead: str = "first",
              num_tasks: int | None = None) -> PartialHN:
    return PartialHN(num_tasks=num_tasks or max(case.experience, 1), num_classes=NUM_CLASSES,
                     model_cfg=ModelConfig(freeze_depth=case.model, prefix_norm=prefix_norm),
                     hyper_cfg=HyperConfig(lookahead=lookahead), device=device, amp=case.amp)


def _train(case: Case, device: torch.device) -> Runner:
    x, y = random_batch(case.batch, case.hw, device)
    if case.method == "ceiling":
        ceiling = Ceiling(case.model, NUM_CLASSES, device, amp=case.amp)
        return Runner(lambda: ceiling.train_step(x, y), case.batch, ceiling)
    if case.method == "phn":
        strategy = make_strategy(case, device, lookahead=case.option or "first")
        task = enter_experience(strategy, case.experience, x, y)
        return Runner(lambda: strategy.train_step(x, y, task), case.batch, strategy)
    if case.method == "per-sample":
        strategy = make_strategy(case, device, prefix_norm="batch")  # their prefix: BN without running statistics
        authors = AuthorsStep.from_strategy(strategy)
        task = enter_experience(strategy, case.experience, x, y, after_end=authors.end_experience)
        return Runner(lambda: authors.train_step(x, y, task), case.batch, (strategy, authors))
    raise ValueError(f"unknown train method {case.method!r}")


def _regulariser(case: Case, device: torch.device) -> Runner:
    n = int(case.option)
    x, y = random_batch(2, case.hw, device)
    strategy = make_strategy(case, device, num_tasks=n + 1)
    authors = AuthorsStep.from_strategy(strategy)
    task = enter_experience(strategy, n + 1, x, y, after_end=authors.end_experience)
    hnet, reg = strategy.hnet, strategy.regulariser
    with torch.no_grad():  # training moved the hypernetwork since the records (R > 0)
        for p in hnet.parameters():
            p.add_(1e-3 * torch.randn_like(p))
    params = dict(hnet.named_parameters())

    def penalty() -> torch.Tensor:
        rows = reg.sample(task)
        if case.method == "batched":
            return reg.penalty(hnet, rows, params)
        if case.method == "loop":
            one = [output_distance(hnet(reg.task_ids[r : r + 1]), {k: v[r : r + 1] for k, v in reg.recorded.items()})
                   for r in rows.tolist()]  # one hypernetwork call per task
            return sum(one) / len(one)
        if case.method == "snapshot-loop":
            generator = PerSampleGenerator(hnet)
            named = {f"hnet.{k}": v for k, v in params.items()}
            tasks = torch.randperm(task, generator=authors.generator)[: authors.reg_tasks].tolist()
            return sum(authors.task_distance(j, generator, named) for j in tasks) / len(tasks)
        raise ValueError(f"unknown regulariser method {case.method!r}")

    def step() -> None:
        torch.autograd.grad(penalty(), list(params.values()), allow_unused=True)

    return Runner(step, 0, (strategy, authors))


def synthetic_subset(per_class: int, classes: int = DATA_CLASSES, seed: int = 0):
    """A :class:`phn.data.ClassSubset` of random uint8 CIFAR-sized images with CIFAR-100's train transform."""
    from phn.data import ClassSubset, dataset_transform, get_dataset_info
    from phn.data.vision import TensorImages

    g = torch.Generator().manual_seed(seed)
    targets = torch.arange(classes).repeat_interleave(per_class)
    images = torch.randint(0, 256, (len(targets), 3, 32, 32), generator=g, dtype=torch.uint8)
    transform = dataset_transform("cifar100", augment=True)
    base = TensorImages(images, name="cifar100", train=True, root=Path("."), targets=targets, transform=transform)
    try:  # the transform as data, which the batched path reads (as the stream builders set it)
        from phn.data.batched import ImageSpec
    except ImportError:
        return ClassSubset(base, range(classes), transform)
    info = get_dataset_info("cifar100")
    return ClassSubset(base, range(classes), transform, spec=ImageSpec(info.mean, info.std, True, None))


def device_batches_class():
    """``phn.data.batched.DeviceBatches``, or None where it is not available (yet)."""
    try:
        from phn.data.batched import DeviceBatches
    except ImportError:
        return None
    return DeviceBatches


def _data(case: Case, device: torch.device) -> Runner:
    subset = synthetic_subset(case.data_per_class)
    generator = torch.Generator().manual_seed(0)
    if case.method == "dataloader":
        loader = DataLoader(subset, batch_size=case.batch, shuffle=True, num_workers=0, generator=generator)

        def epoch() -> None:
            for x, y in loader:
                x, y = x.to(device), y.to(device)

        return Runner(epoch, len(subset), loader)
    cls = device_batches_class()
    if cls is None:
        raise ModuleNotFoundError("phn.data.batched.DeviceBatches is not available")
    if case.method == "device-batches":
        batches = cls(subset, case.batch, device, generator, shuffle=True)

        def epoch() -> None:
            for _ in batches:
                pass

        return Runner(epoch, len(subset), batches)
    if case.method == "device-batches+setup":

        def epoch() -> None:
            for _ in cls(subset, case.batch, device, generator, shuffle=True):
                pass

        return Runner(epoch, len(subset), subset)
    raise ValueError(f"unknown data method {case.method!r}")


def build(case: Case, device: torch.device) -> Runner:
    """The runner of ``case`` on ``device`` (setup done, nothing timed yet)."""
    if case.section in ("train", "lookahead"):
        return _train(case, device)
    if case.section == "regulariser":
        return _regulariser(case, device)
    if case.section == "data":
        return _data(case, device)
    raise ValueError(f"no runner for section {case.section!r}")


__all__ = ["DATA_CLASSES", "DATA_PER_CLASS", "NUM_CLASSES", "TUNED_MALLOC", "Case", "Ceiling", "Runner", "build",
           "device_batches_class", "enter_experience", "make_strategy", "model_name", "random_batch",
           "synthetic_subset"]
