"""Run directories: complete and consistent, or visibly incomplete; never two configurations mixed.

A run directory holds the files of ONE run (:mod:`phn.results` lists them). Three rules keep its
numbers trustworthy:

1. **Completion marker.** ``complete.json`` is written last, after every result file, and holds the
   run's key (settings, code, data; :func:`run_key`) and the sha256 of ``metrics.json``. It is removed
   first whenever a run starts in the directory. Results count (for the cache and for
   :meth:`phn.results.Results.load`) only when the marker is there and matches: a run interrupted at
   any point leaves a directory that is visibly incomplete, never one whose ``metrics.json`` belongs
   to another ``config.json``.
2. **One configuration.** A run with other settings than the ``config.json`` already in the directory
   refuses (:class:`RunDirectoryError`, naming the differing settings) unless ``overwrite``, which
   removes the earlier run's files first. Same settings but other ``phn`` code or other data files:
   the results are recomputed (with a notice), or, for other code only, reused when asked.
3. **A lock.** ``.lock`` (host, process id, start time, refreshed while the run trains) keeps a second
   run out of a directory in use (:class:`RunLockedError`). A lock whose process is gone (same host),
   or that was not refreshed for ``PHN_LOCK_STALE_S`` seconds (default 900; another host), is stale:
   it is broken with a notice, so a run resumed after a crash, or on another node, is not blocked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger("phn")

MARKER = "complete.json"
LOCK = ".lock"
CONFIG = "config.json"
METRICS = "metrics.json"
CHECKPOINT = "checkpoint.pt"
RESULT_FILES = (METRICS, "accuracy.csv", "steps.csv", "diagnostics.csv", "curves.csv")
RECORDED_KEYS = ("versions", "code", "data")  # recorded with a run, not settings of it
STALE_ENV = "PHN_LOCK_STALE_S"
HEARTBEAT_S = 30.0


class RunDirectoryError(ValueError):
    """A run directory cannot be used as asked (other configuration, in use, unreadable, ...)."""


class RunLockedError(RunDirectoryError):
    """Another live run holds the directory's lock."""


class CorruptRunError(RunDirectoryError):
    """A run file exists but cannot be read (truncated, not JSON, not a phn checkpoint)."""


# ----------------------------------------------------------------------------- keys and differences
def settings(config: dict[str, Any]) -> dict[str, Any]:
    """The settings of a run: its config without what is only recorded (versions, code, data)."""
    return {k: v for k, v in config.items() if k not in RECORDED_KEYS}


def digest(data: Any) -> str:
    """A short sha256 of JSON data (sorted keys)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def data_identity(data: list[dict[str, Any]] | None) -> list[Any]:
    """What identifies the data of a run: per split, the names and sha256 of the files read (not
    where they lie, so moving a dataset keeps its results; changing a byte does not)."""
    return [[entry.get("dataset"), entry.get("split"),
             [[Path(f.get("path", "")).name, f.get("sha256")] for f in entry.get("files", [])]]
            for entry in data or []]


def run_key(config: dict[str, Any]) -> dict[str, str | None]:
    """What a cached result must match: digests of the settings and of the data files' content
    (:func:`data_identity`), and the fingerprint of the ``phn`` source (:mod:`phn.provenance`)."""
    return {"settings": digest(settings(config)), "code": (config.get("code") or {}).get("phn_sha256"),
            "data": digest(data_identity(config.get("data")))}


def differences(old: dict[str, Any], new: dict[str, Any], limit: int = 6) -> str:
    """The settings that differ, as ``train.epochs: 2 -> 1, ...`` (at most ``limit``)."""
    def flat(values: Any, prefix: str = "") -> dict[str, Any]:
        if not isinstance(values, dict):
            return {prefix.rstrip("."): values}
        out: dict[str, Any] = {}
        for key, value in values.items():
            out.update(flat(value, f"{prefix}{key}."))
        return out

    a, b = flat(settings(old)), flat(settings(new))
    changed = [f"{k}: {a.get(k, '(absent)')} -> {b.get(k, '(absent)')}" for k in sorted(set(a) | set(b))
               if a.get(k, "(absent)") != b.get(k, "(absent)")]
    more = f" and {len(changed) - limit} more" if len(changed) > limit else ""
    return ", ".join(changed[:limit]) + more


def data_differences(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> str:
    """Which data files changed between two provenance lists (for notices)."""
    def files(entries):
        return {f["path"]: f.get("sha256") for e in entries for f in e.get("files", [])}

    a, b = files(old or []), files(new or [])
    changed = sorted(p for p in set(a) | set(b) if a.get(p) != b.get(p))
    return ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "") or "(none)"


# ----------------------------------------------------------------------------- reading files
def read_json(path: Path) -> Any:
    """JSON from ``path``; an unreadable file raises :class:`CorruptRunError` naming it."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptRunError(f"{path} is unreadable ({type(error).__name__}: {error}); "
                              "the run that wrote it did not finish or the file was altered") from None


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def completed_key(run_dir: Path) -> dict[str, Any] | None:
    """The key of the finished run in ``run_dir``, or None when it holds no complete, intact run
    (no marker, or ``metrics.json`` changed after the marker was written)."""
    marker, metrics = run_dir / MARKER, run_dir / METRICS
    if not marker.is_file() or not metrics.is_file():
        return None
    try:
        record = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if record.get("metrics_sha256") != file_sha256(metrics):
        return None
    return record.get("key")


def check_complete(run_dir: Path) -> None:
    """Raise :class:`CorruptRunError` unless ``run_dir`` holds a finished, intact run."""
    if completed_key(run_dir) is None:
        why = "no complete.json" if not (run_dir / MARKER).exists() else "metrics.json does not match complete.json"
        raise CorruptRunError(f"{run_dir} holds no finished run ({why}): it was interrupted, is still running, "
                              "or a file was altered; rerun it")


def mark_complete(run_dir: Path, config: dict[str, Any]) -> None:
    """Write the completion marker (after every result file)."""
    from phn.results import write_json

    write_json(run_dir / MARKER, {"key": run_key(config), "metrics_sha256": file_sha256(run_dir / METRICS),
                                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def clear(run_dir: Path, keep_checkpoints: bool) -> None:
    """Remove the marker first, then result files (and checkpoints unless ``keep_checkpoints``)."""
    (run_dir / MARKER).unlink(missing_ok=True)
    for name in RESULT_FILES:
        (run_dir / name).unlink(missing_ok=True)
    if not keep_checkpoints:
        for path in [run_dir / CHECKPOINT, *run_dir.glob("checkpoint-e*.pt")]:
            path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- lock
def _process_start(pid: int) -> str | None:
    """Start time of process ``pid`` (clock ticks since boot, from /proc), None if unknown or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = _process_start(pid)
    return started is None or now is None or now == started  # a reused pid is another process


@dataclass
class RunLock:
    """The lock of a run directory (see the module docstring). Use :func:`locked`."""

    path: Path
    owner: dict[str, Any] = field(default_factory=dict)
    last_beat: float = 0.0

    def acquire(self) -> None:
        pid = os.getpid()
        self.owner = {"host": socket.gethostname(), "pid": pid, "process_start": _process_start(pid),
                      "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        for _ in range(3):
            tmp = self.path.with_name(f"{LOCK}.{pid}.tmp")
            tmp.write_text(json.dumps(self.owner))
            try:
                os.link(tmp, self.path)  # atomic: fails if a lock exists, never leaves half a lock
                self.last_beat = time.monotonic()
                return
            except FileExistsError:
                self._refuse_or_break()
            finally:
                tmp.unlink(missing_ok=True)
        raise RunLockedError(f"could not lock {self.path.parent}: another run keeps taking it")

    def _refuse_or_break(self) -> None:
        try:
            holder = json.loads(self.path.read_text())
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return  # released meanwhile: try again
        except (OSError, json.JSONDecodeError):
            holder, age = {}, time.time() - self.path.stat().st_mtime
        stale_after = float(os.environ.get(STALE_ENV, 900))
        if holder.get("host") == self.owner["host"]:
            stale = not _alive(int(holder.get("pid", -1)), holder.get("process_start"))
            why = f"its process {holder.get('pid')} is gone"
        else:
            stale = age > stale_after
            why = f"not refreshed for {age:.0f} s (> {STALE_ENV}={stale_after:.0f})"
        if not stale:
            raise RunLockedError(
                f"{self.path.parent} is in use by process {holder.get('pid')} on {holder.get('host')} "
                f"(since {holder.get('since')}); wait for it to finish or use another run directory (--out)")
        log.warning("phn: breaking the stale lock of %s (%s; held by process %s on %s)",
                    self.path.parent, why, holder.get("pid"), holder.get("host"))
        self.path.unlink(missing_ok=True)

    def heartbeat(self, force: bool = False) -> None:
        """Refresh the lock's time stamp (at most every ``HEARTBEAT_S`` seconds unless ``force``)."""
        if force or time.monotonic() - self.last_beat >= HEARTBEAT_S:
            self.last_beat = time.monotonic()
            try:
                os.utime(self.path)
            except OSError:
                pass

    def release(self) -> None:
        try:
            if json.loads(self.path.read_text()).get("pid") == self.owner.get("pid"):
                self.path.unlink()
        except (OSError, json.JSONDecodeError):
            pass


def open_directory(run_dir: Path) -> RunLock:
    """Create ``run_dir`` if needed and lock it; one-line errors for files and unwritable places."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirectoryError(f"run directory {run_dir} is an existing file, not a directory; choose another --out")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = RunLock(run_dir / LOCK)
        lock.acquire()
    except RunDirectoryError:
        raise
    except OSError as error:
        raise RunDirectoryError(f"cannot write to run directory {run_dir}: {error.strerror or error}") from None
    return lock


# ----------------------------------------------------------------------------- what to do
Action = Literal["cached", "fresh", "resume"]


@dataclass
class Plan:
    """What :func:`plan` decided for a run directory, and the notices to show the user."""

    action: Action
    notices: list[str] = field(default_factory=list)
    routine: bool = False  # the notices are routine (a plain cache hit): logged at INFO, not WARNING


def plan(run_dir: Path, config: dict[str, Any], *, resume: bool, use_cache: bool, overwrite: bool,
         reuse_other_code: bool, checkpoint_config: dict[str, Any] | None) -> Plan:
    """Decide between reusing results, resuming and starting over (see the module docstring).

    Args:
        run_dir: the (locked) run directory.
        config: the new run's config (settings plus recorded ``versions``, ``code``, ``data``).
        resume: continue from ``checkpoint.pt`` if it belongs to this run.
        use_cache: reuse finished results of this run.
        overwrite: replace another configuration's files.
        reuse_other_code: reuse finished results of the same settings and data computed by other
            ``phn`` code (said in a notice).
        checkpoint_config: config stored in ``checkpoint.pt`` when resuming and it exists, else None.
    """
    config_path = run_dir / CONFIG
    old = None
    if config_path.exists():
        try:
            old = read_json(config_path)
        except CorruptRunError:
            if not overwrite:
                raise
    if old is not None and settings(old) != settings(config):
        if not overwrite:
            what = "cannot resume: " if resume else ""
            raise RunDirectoryError(
                f"{what}{run_dir} holds another configuration's run ({differences(old, config)}); use another run "
                "directory (--out), or --overwrite (overwrite=True) to replace it")
        return Plan("fresh", [f"replacing the run of another configuration in {run_dir} (--overwrite)"])
    key, done = run_key(config), completed_key(run_dir)
    if done is None and (run_dir / MARKER).exists():
        notice = f"recomputing {run_dir}: its metrics.json does not match its complete.json (altered or corrupt)"
        return Plan("fresh", [notice])
    if done is not None and old is not None:
        same_data = done.get("data") == key["data"]
        if done == key and use_cache:
            return Plan("cached", [f"results of an identical earlier run (same settings, code and data) in "
                                   f"{run_dir}; --no-cache (use_cache=False) recomputes them"], routine=True)
        if same_data and done.get("code") != key["code"] and use_cache and reuse_other_code:
            return Plan("cached", [f"reusing results in {run_dir} computed by OTHER phn code "
                                   f"(source {str(done.get('code'))[:12]}, now {str(key['code'])[:12]}), as asked"])
        if not same_data:
            notice = (f"recomputing {run_dir}: its results were computed from other data files "
                      f"({data_differences(old.get('data'), config.get('data'))})")
        elif done.get("code") != key["code"]:
            notice = (f"recomputing {run_dir}: its results were computed by other phn code (source "
                      f"{str(done.get('code'))[:12]}, now {str(key['code'])[:12]}); --reuse-other-code keeps them")
        else:
            notice = f"recomputing {run_dir} (--no-cache)"
        return Plan("fresh", [notice])
    if resume and checkpoint_config is not None:
        if settings(checkpoint_config) != settings(config):
            raise RunDirectoryError(
                f"cannot resume: {run_dir / CHECKPOINT} was written by another configuration "
                f"({differences(checkpoint_config, config)}); rerun without --resume to start over")
        if run_key(checkpoint_config) != key:
            what = "code" if run_key(checkpoint_config)["data"] == key["data"] else "data files"
            raise RunDirectoryError(
                f"cannot resume: {run_dir / CHECKPOINT} was written with other {what} "
                f"than this run's; rerun without --resume to start over")
        return Plan("resume")
    return Plan("fresh")


__all__ = [
    "CorruptRunError", "Plan", "RunDirectoryError", "RunLock", "RunLockedError", "check_complete", "clear",
    "completed_key", "differences", "mark_complete", "open_directory", "plan", "read_json", "run_key", "settings",
]
