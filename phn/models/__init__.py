"""Slim ResNet-18, its split at freeze depth k, and the generated (target) part for hypernetworks."""

from phn.models.norm import BatchStatNorm2d, PerSampleNorm2d, norm_factory
from phn.models.resnet import (
    MultiHeadClassifier, SlimResNet18, build_prefix, freeze_, latent_shape, num_prefix_parts,
)
from phn.models.target import GeneratedResNet

__all__ = [
    "BatchStatNorm2d", "GeneratedResNet", "MultiHeadClassifier", "PerSampleNorm2d", "SlimResNet18", "build_prefix",
    "freeze_", "latent_shape", "norm_factory", "num_prefix_parts",
]
