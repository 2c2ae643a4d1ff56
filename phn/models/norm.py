"""Normalisation layers of the generated (hypernetwork-driven) part of the network.

Neither keeps running statistics, so train and test behave alike; gamma/beta come from the
hypernetwork (per task). Both use the biased variance and eps = 1e-5, like ``nn.BatchNorm2d``.

- :class:`PerSampleNorm2d` (``norm="per_sample"``, default): every sample is normalised with its own
  spatial statistics per channel (instance-norm-like). This is what the authors' code computes:
  their BN keeps no running statistics and runs under a per-sample ``vmap``, i.e. on batches of one.
  A prediction therefore never depends on the other samples of its batch.
- :class:`BatchStatNorm2d` (``norm="batch"``): statistics of the current batch, at train and test time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-5


class _AffineNorm2d(nn.Module):
    """Shared parameters: ``weight`` (gamma, init 1) and ``bias`` (beta, init 0), both (C,)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def extra_repr(self) -> str:
        return f"{self.num_features}"


class PerSampleNorm2d(_AffineNorm2d):
    """Per-sample, per-channel normalisation over (H, W), then gamma * x_hat + beta.

    Equal to ``F.batch_norm(x[i:i+1], None, None, gamma, beta, training=True)`` for every sample i.
    Computed as a GroupNorm with one group per channel (fast fused CPU/CUDA kernels).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, C, H, W) -> (B, C, H, W)
        return F.group_norm(x, self.num_features, self.weight, self.bias, EPS)


class BatchStatNorm2d(_AffineNorm2d):
    """Batch-statistics BN without running statistics (same in train and eval mode)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, C, H, W) -> (B, C, H, W)
        return F.batch_norm(x, None, None, self.weight, self.bias, training=True, momentum=0.0, eps=EPS)


def norm_factory(norm: str) -> type[_AffineNorm2d]:
    """``"per_sample"`` -> :class:`PerSampleNorm2d`, ``"batch"`` -> :class:`BatchStatNorm2d`."""
    table = {"per_sample": PerSampleNorm2d, "batch": BatchStatNorm2d}
    if norm not in table:
        raise ValueError(f"norm must be one of {sorted(table)}, got {norm!r}")
    return table[norm]


__all__ = ["EPS", "BatchStatNorm2d", "PerSampleNorm2d", "norm_factory"]
