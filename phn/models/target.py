"""The generated part of the slim ResNet-18 (the hypernetwork's *target* network, Eq. 1-4).

``h_omega`` in the paper's notation: for freeze depth k it holds the backbone parts after the prefix
(the stem and all stages for k = 0, i.e. HN-F), global average pooling and a single linear
classifier 8nf -> C. Its weights omega = H(e_t) come from the hypernetwork, one set per task.

Contract (hypnettorch's ``no_weights`` style): :attr:`GeneratedResNet.param_shapes` lists the
tensors it needs in a fixed order with readable names (``stage3.0.conv1.weight``,
``stage3.0.bn1.weight``, ``classifier.weight`` ...), :attr:`GeneratedResNet.param_kinds` says which
head type generates each, and :meth:`GeneratedResNet.forward` takes ``weights`` mapping those names to
tensors and runs the module through :func:`torch.func.functional_call`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn
from torch.func import functional_call

from phn.models.norm import norm_factory
from phn.models.resnet import PART_NAMES, make_parts, num_prefix_parts


class GeneratedResNet(nn.Module):
    """Stages k+1..4 (+ stem for k = 0), pooling and classifier, run on externally given weights.

    Args:
        freeze_depth: k in 0..4 (the prefix, not part of this module, is stem + stages 1..k).
        num_classes: C, outputs of the (per-task generated) classifier.
        nf: width of stage 1 (paper: 20).
        norm: ``"per_sample"`` (default, the authors' effective behaviour) or ``"batch"``; see
            :mod:`phn.models.norm`.
        in_channels: image channels (used only when k = 0).

    The module's own parameters are placeholders that define names and shapes; they do not require
    gradients and are never trained.
    """

    def __init__(
        self, freeze_depth: int, num_classes: int, nf: int = 20, norm: str = "per_sample", in_channels: int = 3
    ) -> None:
        super().__init__()
        self.freeze_depth = freeze_depth
        self.first_part = num_prefix_parts(freeze_depth)
        parts = make_parts(nf, norm_factory(norm), in_channels)
        self.part_names = PART_NAMES[self.first_part :]
        for name, part in zip(self.part_names, parts[self.first_part :], strict=True):
            self.add_module(name, part)
        self.classifier = nn.Linear(8 * nf, num_classes)
        self.requires_grad_(False)
        self.param_shapes: OrderedDict[str, torch.Size] = OrderedDict(
            (name, p.shape) for name, p in self.named_parameters()
        )
        self.param_kinds: OrderedDict[str, str] = OrderedDict()
        for mod_name, module in self.named_modules():
            for p_name, _ in module.named_parameters(recurse=False):
                self.param_kinds[f"{mod_name}.{p_name}"] = _kind(module, p_name)
        assert list(self.param_kinds) == list(self.param_shapes)

    def num_generated(self) -> int:
        """Number of generated floats per task (sum of all ``param_shapes``)."""
        return sum(s.numel() for s in self.param_shapes.values())

    def _run(self, z: torch.Tensor) -> torch.Tensor:
        for name in self.part_names:
            z = getattr(self, name)(z)
        return self.classifier(z.mean(dim=(2, 3)))

    def forward(self, z: torch.Tensor, weights: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Logits for a batch of one task.

        Args:
            z: (B, C_k, H_k, W_k) prefix output (the image itself for k = 0).
            weights: name -> tensor of shape ``param_shapes[name]`` (one task's omega); ``None``
                uses the placeholder parameters.

        Returns:
            (B, num_classes) logits.
        """
        if weights is None:
            return self._run(z)
        # functional_call swaps the placeholders for ``weights`` and calls forward(z, None) -> _run.
        return functional_call(self, dict(weights), (z,), strict=True)


def _kind(module: nn.Module, p_name: str) -> str:
    if isinstance(module, nn.Conv2d):
        return "conv"
    if isinstance(module, nn.Linear):
        return f"linear_{p_name}"
    return f"norm_{p_name}"


__all__ = ["GeneratedResNet"]
