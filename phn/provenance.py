"""Which code produced a result: a fingerprint of ``phn``'s source, plus the git commit for reference.

Every run records :func:`code_provenance` in its ``config.json`` (key ``code``), and the results
cache reuses a run only when the fingerprint is unchanged (:mod:`phn.rundir`). The fingerprint
covers the Python source files of the ``phn`` package that can change what a run trains or records:
every module but those of :data:`NOT_IN_RUNS`, which only choose run configurations (whose values are
the cache key's settings) or read finished runs (findings, tables, plots, the ledger, profiles). So
editing a chapter's findings, documentation, notebooks, tests or the book never invalidates a result,
while any change to the training path does. A test trains a run in a fresh process and checks that
none of :data:`NOT_IN_RUNS` was imported.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
# Relative paths (a folder: all below it) of modules that never run inside a training run.
NOT_IN_RUNS = ("experiments/", "ledger.py", "plots.py", "profiles.py", "machine.py", "notebooks.py", "reference.py")


def _in_runs(relative: str) -> bool:
    return not any(relative == part or (part.endswith("/") and relative.startswith(part)) for part in NOT_IN_RUNS)


def source_files() -> list[Path]:
    """The Python source files of the ``phn`` package outside :data:`NOT_IN_RUNS`, sorted (what the
    fingerprint covers)."""
    return sorted(p for p in PACKAGE_DIR.rglob("*.py")
                  if "__pycache__" not in p.parts and _in_runs(p.relative_to(PACKAGE_DIR).as_posix()))


def source_fingerprint() -> str:
    """sha256 over the relative path and bytes of every file of :func:`source_files` (hex)."""
    digest = hashlib.sha256()
    for path in source_files():
        relative = path.relative_to(PACKAGE_DIR).as_posix().encode()
        content = path.read_bytes()
        digest.update(len(relative).to_bytes(8, "big") + relative + len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


def _git(*args: str) -> str | None:
    if not (REPO_DIR / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(REPO_DIR), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_provenance() -> dict[str, Any]:
    """``{"phn_sha256": fingerprint, "git_commit": HEAD or None, "git_dirty": phn/ has uncommitted
    changes (None outside a git checkout)}``. Only the fingerprint is part of the cache key; the
    commit is recorded so a reader can find the code."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--", "phn") if commit else None
    return {"phn_sha256": source_fingerprint(), "git_commit": commit,
            "git_dirty": None if status is None else bool(status)}


__all__ = ["NOT_IN_RUNS", "code_provenance", "source_files", "source_fingerprint"]
