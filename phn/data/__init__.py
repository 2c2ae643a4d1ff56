"""Datasets and class-incremental streams.

* ``datasets``: registry of FashionMNIST, MNIST, CIFAR-10/100, SVHN, GTSRB and TinyImageNet-200,
  root resolution, checksums; :func:`load_dataset` returns items (x (3, 32, 32) float, int label).
* ``streams``: :class:`Experience`, split / cross-dataset / noisy stream builders,
  :func:`stream_provenance` (the files a stream was read from, with their sha256).
* ``stream_registry``: :func:`make_stream` by name and the frozen :class:`StreamConfig`.
* ``noise``: the named per-experience corruptions of the noisy stream.

Example:
    >>> stream = make_stream("split-fashionmnist", seed=0)          # doctest: +SKIP
    >>> x, y = stream[0].train[0]; x.shape, y                        # doctest: +SKIP
    (torch.Size([3, 32, 32]), 1)
"""

from phn.data.datasets import (
    DATASETS,
    DatasetInfo,
    VisionData,
    data_roots,
    dataset_targets,
    dataset_transform,
    get_dataset_info,
    load_dataset,
    load_splits,
    resolve_verify_checksums,
    search_dirs,
)
from phn.data.errors import ChecksumError, CorruptDatasetError, DatasetNotFoundError
from phn.data.noise import NOISE_NAMES, NoiseTransform, noise_transforms
from phn.data.stream_registry import SPLIT_DEFAULTS, StreamConfig, make_stream, parse_stream_name, stream_names
from phn.data.streams import (
    ClassSubset,
    Experience,
    Stream,
    cross_dataset_stream,
    noisy_stream,
    resolve_class_order,
    sample_images,
    split_cifar100,
    split_dataset,
    split_fashionmnist,
    split_tinyimagenet,
    stream_provenance,
)
from phn.data.transforms import build_transform

__all__ = [
    "DATASETS", "NOISE_NAMES", "SPLIT_DEFAULTS", "ChecksumError", "ClassSubset", "CorruptDatasetError",
    "DatasetInfo", "DatasetNotFoundError", "Experience", "NoiseTransform", "Stream", "StreamConfig",
    "VisionData", "build_transform", "cross_dataset_stream", "data_roots", "dataset_targets",
    "dataset_transform", "get_dataset_info", "load_dataset", "load_splits", "make_stream", "noise_transforms",
    "noisy_stream", "parse_stream_name", "resolve_class_order", "resolve_verify_checksums", "sample_images",
    "search_dirs", "split_cifar100", "split_dataset", "split_fashionmnist", "split_tinyimagenet",
    "stream_names", "stream_provenance",
]
