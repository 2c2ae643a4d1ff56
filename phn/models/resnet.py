"""Slim ResNet-18 (nf = 20) and its decomposition at freeze depth k (Section 2, Appendix A.1).

The backbone has five *parts*, addressed by index::

    0: stem    3x3 conv (3 -> nf, stride 1, no bias) + BN + ReLU         # (B, 3, 32, 32) -> (B, 20, 32, 32)
    1: stage1  2 BasicBlocks, nf channels,  stride 1                     # -> (B, 20, 32, 32)
    2: stage2  2 BasicBlocks, 2nf channels, stride 2                     # -> (B, 40, 16, 16)
    3: stage3  2 BasicBlocks, 4nf channels, stride 2                     # -> (B, 80, 8, 8)
    4: stage4  2 BasicBlocks, 8nf channels, stride 2                     # -> (B, 160, 4, 4)

followed by global average pooling and a (multi-head) linear classifier 8nf -> C.

Freeze depth k in 0..4: the *prefix* is the stem and stages 1..k (parts ``[0, k + 1)``) for k >= 1
and is EMPTY for k = 0 (nothing is frozen, so HN-0 is HN-F and LR-0 replays raw inputs). The
prefix is trained on experience 1 and then frozen; everything after it is the *suffix*.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

NormFactory = Callable[[int], nn.Module]
PART_NAMES = ("stem", "stage1", "stage2", "stage3", "stage4")


def num_prefix_parts(freeze_depth: int) -> int:
    """How many of the five backbone parts the prefix of depth k holds (0 for k = 0, else k + 1)."""
    if not 0 <= freeze_depth <= 4:
        raise ValueError(f"freeze_depth must be in 0..4, got {freeze_depth}")
    return 0 if freeze_depth == 0 else freeze_depth + 1


def bn_factory(prefix_norm: str = "running") -> NormFactory:
    """BatchNorm2d factory: ``"running"`` keeps running statistics (eval mode uses them);
    ``"batch"`` keeps none and always normalises with the statistics of the current batch
    (the authors' behaviour, so predictions depend on the composition of a test batch)."""
    if prefix_norm == "running":
        return nn.BatchNorm2d
    if prefix_norm == "batch":
        return lambda c: nn.BatchNorm2d(c, track_running_stats=False)
    raise ValueError(f"prefix_norm must be 'running' or 'batch', got {prefix_norm!r}")


class ConvBN(nn.Module):
    """Conv (no bias) followed by a normalisation layer; used as stem (with ReLU) and shortcut."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, norm: NormFactory, relu: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.bn = norm(c_out)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn(self.conv(x))
        return F.relu(out) if self.relu else out


class BasicBlock(nn.Module):
    """ResNet basic block: conv3x3-BN-ReLU-conv3x3-BN + shortcut, then ReLU.

    The shortcut is a 1x1 conv (no bias) + BN where the stride or channel count changes.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, norm: NormFactory) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = norm(c_out)
        self.shortcut = ConvBN(c_in, c_out, 1, stride, norm, relu=False) if stride != 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


def make_parts(nf: int = 20, norm: NormFactory = nn.BatchNorm2d, in_channels: int = 3) -> list[nn.Module]:
    """The five backbone parts [stem, stage1, stage2, stage3, stage4] (see the module docstring)."""
    parts: list[nn.Module] = [ConvBN(in_channels, nf, 3, 1, norm, relu=True)]
    c_in = nf
    for i, stride in enumerate((1, 2, 2, 2)):
        c_out = nf * 2**i
        parts.append(nn.Sequential(BasicBlock(c_in, c_out, stride, norm), BasicBlock(c_out, c_out, 1, norm)))
        c_in = c_out
    return parts


def latent_shape(freeze_depth: int, input_hw: int = 32, nf: int = 20, in_channels: int = 3) -> tuple[int, int, int]:
    """Shape of one sample at the output of the prefix of depth k (what latent replay stores).

    Example:
        >>> latent_shape(4), latent_shape(1), latent_shape(0)
        ((160, 4, 4), (20, 32, 32), (3, 32, 32))
    """
    if num_prefix_parts(freeze_depth) == 0:
        return (in_channels, input_hw, input_hw)
    return (nf * 2 ** (freeze_depth - 1), input_hw // 2 ** (freeze_depth - 1), input_hw // 2 ** (freeze_depth - 1))


class MultiHeadClassifier(nn.Module):
    """One linear head per task (Avalanche's ``MultiHeadClassifier`` with heads allocated up front).

    Args:
        in_features: feature size (8nf = 160).
        num_classes: outputs per head.
        num_tasks: number of heads.
    """

    def __init__(self, in_features: int = 160, num_classes: int = 10, num_tasks: int = 1) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(in_features, num_classes) for _ in range(num_tasks))

    def forward(self, z: torch.Tensor, task_id: int) -> torch.Tensor:
        """z: (B, in_features) -> logits (B, num_classes) of head ``task_id``."""
        return self.heads[task_id](z)


class SlimResNet18(nn.Module):
    """Plain (non-generated) slim ResNet-18 with a multi-head classifier (Naive, EWC, latent replay).

    Args:
        num_classes: outputs per task head.
        num_tasks: number of task heads.
        nf: width of stage 1 (paper: 20).
        prefix_norm: ``"running"`` (standard BN) or ``"batch"`` (BN without running statistics).

    Parts are registered as ``stem``, ``stage1`` .. ``stage4`` (parameter names such as
    ``stage3.0.conv1.weight``); :attr:`stages` lists them in order.
    """

    def __init__(self, num_classes: int = 10, num_tasks: int = 1, nf: int = 20, prefix_norm: str = "running") -> None:
        super().__init__()
        self.nf = nf
        for name, part in zip(PART_NAMES, make_parts(nf, bn_factory(prefix_norm)), strict=True):
            self.add_module(name, part)
        self.classifier = MultiHeadClassifier(8 * nf, num_classes, num_tasks)

    @property
    def stages(self) -> list[nn.Module]:
        """[stem, stage1, stage2, stage3, stage4]."""
        return [getattr(self, name) for name in PART_NAMES]

    def features(self, x: torch.Tensor, start: int = 0, end: int = 5) -> torch.Tensor:
        """Run parts ``[start, end)``. x: (B, C, H, W) at depth ``start`` -> activations at depth ``end``."""
        for part in self.stages[start:end]:
            x = part(x)
        return x

    def forward_from(self, z: torch.Tensor, start: int, task_id: int) -> torch.Tensor:
        """Logits (B, C) from activations z at part index ``start`` (e.g. replayed latents)."""
        feats = self.features(z, start, 5)  # (B, 8nf, h, w)
        return self.classifier(feats.mean(dim=(2, 3)), task_id)

    def forward(self, x: torch.Tensor, task_id: int = 0) -> torch.Tensor:
        """x: (B, 3, H, W) -> logits (B, num_classes) of head ``task_id``."""
        return self.forward_from(x, 0, task_id)

    def split(self, freeze_depth: int) -> tuple[nn.Sequential, nn.Sequential]:
        """(prefix, suffix backbone) sharing this model's modules; suffix excludes pooling/classifier.

        For k = 0 the prefix is an empty ``nn.Sequential`` (the identity).
        """
        n = num_prefix_parts(freeze_depth)
        return nn.Sequential(*self.stages[:n]), nn.Sequential(*self.stages[n:])


def build_prefix(freeze_depth: int, nf: int = 20, prefix_norm: str = "running", in_channels: int = 3) -> nn.Sequential:
    """A fresh prefix (stem + stages 1..k) as an ``nn.Sequential`` whose children are named like the
    full model's parts (``stem``, ``stage1``, ...); empty for k = 0."""
    parts = make_parts(nf, bn_factory(prefix_norm), in_channels)[: num_prefix_parts(freeze_depth)]
    return nn.Sequential(OrderedDict(zip(PART_NAMES, parts, strict=False)))


@torch.no_grad()
def recalibrate_bn_(module: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Recompute the running statistics of every BN layer that tracks them, in place, as the
    cumulative average over ``batches`` (each (B, C, H, W), already on the module's device).

    After a short first experience the exponential running averages (momentum 0.1) lag far behind
    the final weights; eval-mode features are then off (measured on a 2-class toy stream: HN-4 at
    chance, 100 % after recalibration). Leaves the module in eval mode; momentum is restored.
    """
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns:
        return module.eval()
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    module.train()
    with torch.no_grad():
        for x in batches:
            module(x)
    for m, momentum in zip(bns, momenta, strict=True):
        m.momentum = momentum
    return module.eval()


def freeze_(module: nn.Module) -> nn.Module:
    """Freeze in place: ``requires_grad=False`` on every parameter and eval mode (BN running stats
    stop updating; with ``prefix_norm="batch"`` BN keeps using batch statistics). Returns the module."""
    module.requires_grad_(False)
    return module.eval()


__all__ = [
    "PART_NAMES", "BasicBlock", "ConvBN", "MultiHeadClassifier", "SlimResNet18", "bn_factory", "build_prefix",
    "freeze_", "latent_shape", "make_parts", "num_prefix_parts", "recalibrate_bn_",
]
