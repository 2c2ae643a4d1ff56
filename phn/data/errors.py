"""Exceptions raised by the data layer.

Two failure modes only, so callers (and CLI messages) can tell them apart:

* :class:`DatasetNotFoundError`: the files are not in any searched place. The message names the
  dataset, every path searched, the files expected and how to obtain them.
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

    Skip the check with ``verify_checksums=False`` or the environment variable
    ``PHN_VERIFY_CHECKSUMS=0`` when the files are known to be good (e.g. generated fixtures).
    """


__all__ = ["ChecksumError", "CorruptDatasetError", "DatasetNotFoundError"]
