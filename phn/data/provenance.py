"""Provenance of a loaded split: which files were read, their sizes and sha256, what was verified.

:func:`split_provenance` describes one split as JSON-ready plain data; ``load_dataset`` stores it
as ``VisionData.provenance`` and :func:`phn.data.stream_provenance` collects those of a stream.
It is meant for results-cache keys: the same files always give the same record, a modified byte
changes it. Hashes are computed once per process: a file's is cached on (resolved path, size,
mtime_ns), a folder's on the (relative path, size, mtime_ns) of every file under it.

Record of one split::

    {"dataset": "fashionmnist", "split": "train", "folder": "/usr/share/datasets/fashion-mnist",
     "files": [{"path": ".../train-images-idx3-ubyte.gz", "bytes": 26421856, "sha256": "..."}, ...],
     "checksum": "md5 of decompressed content"}      # None when nothing was verified

A folder read as one image file per sample (GTSRB, TinyImageNet) appears in ``"files"`` as
``{"path": folder, "count": number of files, "bytes": total size, "sha256": digest}``, the digest
taken over the sorted relative paths and contents of every file under it.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def _update(digest: Any, path: Path) -> None:
    """Feed the bytes of ``path`` to ``digest`` in chunks."""
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)


@functools.lru_cache(maxsize=1024)
def _cached_file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    _update(digest, Path(path))
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 (hex) of the bytes of ``path``; computed once per (resolved path, size, mtime_ns)."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return _cached_file_sha256(str(resolved), stat.st_size, stat.st_mtime_ns)


def file_record(path: str | os.PathLike) -> dict[str, Any]:
    """``{"path": resolved path, "bytes": size, "sha256": hex}`` of one file."""
    resolved = Path(path).resolve()
    return {"path": str(resolved), "bytes": resolved.stat().st_size, "sha256": file_sha256(resolved)}


def _folder_stats(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """(relative posix path, size, mtime_ns) of every file under ``folder``, sorted by path."""
    stats = []
    for directory, _, names in os.walk(folder, followlinks=True):
        for name in names:
            path = Path(directory, name)
            if path.is_file():
                stat = path.stat()
                stats.append((path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(stats))


@functools.lru_cache(maxsize=16)
def _cached_folder_sha256(folder: str, stats: tuple[tuple[str, int, int], ...]) -> str:
    """sha256 over length-prefixed (relative path, content) of every file, in sorted path order."""
    digest = hashlib.sha256()
    for relative, size, _ in stats:
        name = relative.encode()
        digest.update(len(name).to_bytes(8, "big") + name + size.to_bytes(8, "big"))
        _update(digest, Path(folder, relative))
    return digest.hexdigest()


def folder_record(folder: str | os.PathLike) -> dict[str, Any]:
    """``{"path", "count", "bytes", "sha256"}`` of a folder: its files, their total size and one
    digest over their sorted relative paths and contents (cached while no file changes)."""
    resolved = Path(folder).resolve()
    stats = _folder_stats(resolved)
    return {"path": str(resolved), "count": len(stats), "bytes": sum(size for _, size, _ in stats),
            "sha256": _cached_folder_sha256(str(resolved), stats)}


def source_record(path: str | os.PathLike) -> dict[str, Any]:
    """:func:`folder_record` of a folder, :func:`file_record` of a file."""
    return folder_record(path) if Path(path).is_dir() else file_record(path)


def split_provenance(dataset: str, train: bool, folder: str | os.PathLike, sources: Iterable[str | os.PathLike],
                     checksum: str | None) -> dict[str, Any]:
    """JSON-ready record of one split (see the module docstring).

    Args:
        dataset: registry name.
        train: training split if True, else test split.
        folder: the folder the split was found in.
        sources: the files and folders read, in the reader's order.
        checksum: what was verified (e.g. ``"md5"``), None when nothing was.
    """
    return {"dataset": dataset, "split": "train" if train else "test", "folder": str(Path(folder).resolve()),
            "files": [source_record(path) for path in sources], "checksum": checksum}


__all__ = ["file_record", "file_sha256", "folder_record", "source_record", "split_provenance"]
