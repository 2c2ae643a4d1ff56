"""Exceptions raised by the data layer.

Two failure modes only, so callers (and CLI messages) can tell them apart:

* :class:`DatasetNotFoundError`: the files are not in any searched place (the message names the
  dataset, every path searched, the files expected and how to obtain them), a data root given
  explicitly does not exist, or the train and test split lie in two folders.
* :class:`CorruptDatasetError`: the files are there but unusable (truncated, not unpicklable,
  inconsistent counts, failed checksum). The message names the file. A dataset is never returned
  silently shortened or empty.
"""

from __future__ import annotations


class DatasetNotFoundError(FileNotFoundError):
    """The files of a dataset were not found in any of the searched directories."""


class CorruptDatasetError(RuntimeError):
    """A dataset file exists but cannot be used (truncated, unreadable or inconsistent)."""


class ChecksumError(CorruptDatasetError):
    """A dataset file does not match its published md5 sum.

    Skip the check with ``--no-verify-checksums`` (CLI), ``verify_checksums=False`` (Python) or the
    environment variable ``PHN_VERIFY_CHECKSUMS=0`` when the files are known to be good (e.g.
    generated fixtures). Also raised for a file that cannot be verified (a decompressed MNIST file
    whose published sum is that of its ``.gz``).
    """


__all__ = ["ChecksumError", "CorruptDatasetError", "DatasetNotFoundError"]
