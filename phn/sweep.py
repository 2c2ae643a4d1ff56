"""Grids of runs, in this process or as Ray tasks: one trial is one run directory; resumable; aggregated.

A sweep is a list of :class:`~phn.config.RunConfig` (usually a :func:`grid`: strategies x freeze
depths x seeds x streams x any config field) and a sweep directory::

    <sweep>/sweep.json           the trials (id and settings of each, in grid order), written when it starts
    <sweep>/trials/<id>.json     one record per trial: status, attempts, errors, where and when it ran
    <sweep>/runs/<id>/           the trial's run directory (phn.rundir), unless ``runs_root`` is given
    <sweep>/trials.csv, summary.csv   the tables of :func:`trials_table` and :func:`summarize`

**Execution.** ``executor="inprocess"`` runs the trials one after another in this process;
``executor="ray"`` submits each as a Ray task (``ray.init()`` on this machine by default, an existing
cluster with ``address``), with ``cpus_per_trial`` / ``gpus_per_trial`` as the task's resources, at most
``max_concurrent`` at a time, and ``torch.set_num_threads(threads_per_trial)`` in the task (default:
the trial's CPUs), so a 2-core machine is not oversubscribed. On a cluster, the sweep directory must
be on a file system every node sees, and ``phn`` installed on every node.

**Reliability.** A trial whose run directory already holds its finished results (same settings, code
and data: :func:`phn.train.cache_key`) is skipped; every other trial runs through
:func:`phn.train.run_config` with ``resume=True``, so a half-finished one continues from its last
checkpoint. A trial that raises (or whose Ray worker or node dies) is reported with its error and
retried ``retries`` times (default once); it never stops the others. An interrupted sweep (Ctrl-C,
kill, lost node) is continued with ``resume=True`` (``--resume``): it runs only what is missing.

**Timing honesty.** Each record keeps the host, start and end of the trial's training, its torch
threads and the host's cores. :func:`annotate_concurrency` then counts, per trial, the other trials
that ran beside it on the same host (``beside``) and whether their threads together exceeded the cores
(``shared_cores``). :func:`summarize` reports, beside each mean time, how many of the seeds were timed
beside other trials, so a time measured while trials shared the cores is never mistaken for a clean one.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from phn.config import ConfigError, RunConfig, from_dict, to_dict

log = logging.getLogger("phn")

Executor = Literal["inprocess", "ray"]
EXECUTORS = ("inprocess", "ray")
SWEEP_FILE = "sweep.json"
TRIALS_DIR = "trials"
RUNS_DIR = "runs"
METRICS = ("aca", "learning_accuracy", "forgetting", "train_time_s")
AXIS_ALIASES: dict[str, tuple[str, ...]] = {
    "seed": ("train.seed", "stream.seed"),  # as `phn run --seed`: model initialisation and class order
    "stream": ("stream.name",),
    "freeze_depth": ("model.freeze_depth",),
    "epochs": ("train.epochs",),
    "lr": ("train.lr",),
}
RAY_MISSING = ("sweeps on Ray need the optional dependency ray: pip install -e '.[sweep]' or "
               "pip install -r requirements-sweep.txt (executor='inprocess' / --executor inprocess runs without it)")


class SweepError(ConfigError):
    """A sweep cannot run as asked (another grid in the directory, bad axis, Ray missing, ...)."""


# ----------------------------------------------------------------------------- the grid
def _apply(values: dict[str, Any], axis: str, value: Any, base: RunConfig) -> None:
    """Set one axis value in ``values`` (a RunConfig as plain data)."""
    if axis == "strategy":
        from phn.experiments.benchmarks import strategy_sections

        if value in ("naive", "ewc", "lr", "hn"):
            sections = {"strategy": {"name": value}}
        else:
            sections = strategy_sections(str(value), base.strategy.buffer_size, base.strategy.replay_coef)
        for section, fields in sections.items():
            values[section] = {**values[section], **fields}
        return
    for path in AXIS_ALIASES.get(axis, (axis,)):
        section, _, name = path.partition(".")
        if section not in values or not isinstance(values[section], dict) or name not in values[section]:
            known = sorted(AXIS_ALIASES) + ["strategy"] + sorted(f"{s}.{f}" for s, v in values.items()
                                                                 if isinstance(v, dict) for f in v)
            raise SweepError(f"unknown sweep axis {axis!r}; use strategy, {', '.join(sorted(AXIS_ALIASES))} or "
                             f"section.field, one of: {', '.join(known[len(AXIS_ALIASES) + 1:])}")
        values[section][name] = value


def grid(base: RunConfig, axes: Mapping[str, Sequence[Any]]) -> list[RunConfig]:
    """Every combination of the axes' values applied to ``base`` (the first axis varies slowest).

    Axes: ``strategy`` (paper labels ``Naive``, ``EWC``, ``LR-k``, ``HN-k``, ``HN-F``, or the names
    ``naive``, ``ewc``, ``lr``, ``hn``), ``seed`` (training and stream seed, as ``phn run --seed``),
    ``stream``, ``freeze_depth``, ``epochs``, ``lr``, or any ``section.field`` of :class:`RunConfig`
    (e.g. ``hyper.beta``). A later axis overrides what an earlier one set (``HN-4`` then
    ``freeze_depth``).

    Example:
        >>> grid(base, {"strategy": ["Naive", "HN-4"], "seed": [0, 1]})  # doctest: +SKIP
        [Naive seed 0, Naive seed 1, HN-4 seed 0, HN-4 seed 1]
    """
    for axis, values in axes.items():
        if isinstance(values, (str, bytes)) or not len(values):
            raise SweepError(f"sweep axis {axis!r} needs a non-empty list of values, got {values!r}")
    configs, seen = [], set()
    for combination in itertools.product(*axes.values()):
        values = to_dict(base)
        for axis, value in zip(axes, combination, strict=True):
            _apply(values, axis, value, base)
        try:
            cfg = from_dict(RunConfig, values)
        except ValueError as error:
            raise SweepError(f"sweep point {dict(zip(axes, combination, strict=True))}: {error}") from None
        if cfg.digest() not in seen:  # e.g. LR-0 with and without a buffer size axis
            seen.add(cfg.digest())
            configs.append(cfg)
    return configs


def trial_id(cfg: RunConfig) -> str:
    """A trial's name: its run directory's name under the results cache, ``<label>-<digest>``."""
    return f"{cfg.label}-{cfg.digest()}"


# ----------------------------------------------------------------------------- trial records
@dataclasses.dataclass
class TrialRecord:
    """What a sweep knows of one trial (``trials/<id>.json``).

    Attributes:
        id: :func:`trial_id`. ``status``: ``pending``, ``running`` (submitted; after a crash: not
        finished), ``done`` or ``failed``. ``attempts``: how often it was started in this sweep
        directory (each invocation retries a failed trial ``retries`` times).
        errors: one line per failed attempt. ``skipped``: finished results were found (no attempt).
        host, pid, start, end: where and when its training ran (``time.time()``); ``threads``: torch
        threads; ``cores``: CPUs the trial's process could use on that host. ``beside`` and
        ``shared_cores``: see :func:`annotate_concurrency`. ``cached``: the run returned results
        computed before the sweep (its time is not this sweep's measurement).
    """

    id: str
    status: str = "pending"
    attempts: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)
    skipped: bool = False
    cached: bool = False
    host: str | None = None
    pid: int | None = None
    node: str | None = None
    start: float | None = None
    end: float | None = None
    threads: int | None = None
    cores: int | None = None
    beside: int | None = None
    shared_cores: bool | None = None

    @property
    def timed(self) -> bool:
        """The record holds a training interval measured in this sweep."""
        return self.start is not None and self.end is not None and not self.cached

    @classmethod
    def load(cls, path: Path) -> TrialRecord | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: Path) -> None:
        from phn.results import write_json

        write_json(path, dataclasses.asdict(self))


def annotate_concurrency(records: Sequence[TrialRecord]) -> None:
    """Set ``beside`` (other trials whose training overlapped this one's on the same host) and
    ``shared_cores`` (at some moment of this trial, the torch threads of the trials running on its
    host exceeded its cores) for every timed record; None for the others (unknown)."""
    timed = [r for r in records if r.timed]
    for record in records:
        if not record.timed:
            record.beside, record.shared_cores = None, None
            continue
        others = [o for o in timed if o is not record and o.host == record.host
                  and o.start < record.end and o.end > record.start]
        record.beside = len(others)
        moments = [record.start] + [o.start for o in others if record.start <= o.start < record.end]
        peak = max((record.threads or 1) + sum(o.threads or 1 for o in others if o.start <= t < o.end)
                   for t in moments)
        record.shared_cores = peak > (record.cores or os.cpu_count() or 1)


# ----------------------------------------------------------------------------- one trial
def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def execute_trial(config: dict[str, Any], run_dir: str, threads: int | None) -> dict[str, Any]:
    """Run one trial (in this process or a Ray worker): ``run_config`` with ``resume=True``.

    Returns where and when it trained (host, pid, start, end, threads, cores, node) and whether its
    results came from the cache. Raises whatever the run raises.
    """
    import torch

    from phn.train import run_config

    if threads:
        torch.set_num_threads(threads)
    node = None
    try:
        import ray

        if ray.is_initialized():
            node = ray.get_runtime_context().get_node_id()
    except ImportError:
        pass
    start = time.time()
    results = run_config(from_dict(RunConfig, config), out_dir=run_dir, resume=True, use_cache=True, progress=False)
    return {"host": socket.gethostname(), "pid": os.getpid(), "node": node, "start": start, "end": time.time(),
            "threads": torch.get_num_threads(), "cores": _cores(), "cached": bool(results.cached)}


# ----------------------------------------------------------------------------- the sweep
@dataclasses.dataclass(frozen=True)
class SweepOptions:
    """How trials run.

    Attributes:
        executor: ``"inprocess"`` (one after another here) or ``"ray"``.
        address: Ray cluster address (None: start Ray on this machine; ``"auto"``: the running one).
        max_concurrent: trials at a time (None: as many as Ray's resources allow).
        cpus_per_trial, gpus_per_trial: the Ray task's resources.
        threads_per_trial: torch threads in each trial (None: ``cpus_per_trial``, at least 1; in
            process: unchanged).
        retries: further attempts of a failed trial (default 1).
        progress: a progress bar (None: on a terminal).
    """

    executor: Executor = "inprocess"
    address: str | None = None
    max_concurrent: int | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    threads_per_trial: int | None = None
    retries: int = 1
    progress: bool | None = None

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise SweepError(f"executor must be one of {EXECUTORS}, got {self.executor!r}")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise SweepError(f"max_concurrent must be >= 1, got {self.max_concurrent}")
        if not self.cpus_per_trial > 0 or self.gpus_per_trial < 0:
            raise SweepError(f"cpus_per_trial must be > 0 and gpus_per_trial >= 0, got "
                             f"{self.cpus_per_trial}, {self.gpus_per_trial}")
        if self.threads_per_trial is not None and self.threads_per_trial < 1:
            raise SweepError(f"threads_per_trial must be >= 1, got {self.threads_per_trial}")
        if self.retries < 0:
            raise SweepError(f"retries must be >= 0, got {self.retries}")

    @property
    def threads(self) -> int | None:
        if self.threads_per_trial is not None:
            return self.threads_per_trial
        return max(1, int(self.cpus_per_trial)) if self.executor == "ray" else None


@dataclasses.dataclass
class SweepResult:
    """A finished (or partly failed) sweep.

    Attributes:
        trials: :func:`trials_table` (one row per trial).
        summary: :func:`summarize` of the finished trials, one row per strategy.
        results: trial id -> :class:`~phn.results.Results` of every finished trial.
        configs: trial id -> its configuration.
        failed: trial id -> the error of its last attempt.
    """

    directory: Path
    trials: pd.DataFrame
    summary: pd.DataFrame
    results: dict[str, Any]
    configs: dict[str, RunConfig]
    failed: dict[str, str]


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:500]}"


class _Sweep:
    """The state of one sweep directory while it runs."""

    def __init__(self, directory: Path, configs: Sequence[RunConfig], runs_root: Path | None, resume: bool) -> None:
        self.directory = Path(directory)
        self.runs_root = Path(runs_root) if runs_root is not None else self.directory / RUNS_DIR
        self.configs = {trial_id(cfg): cfg for cfg in configs}
        if len(self.configs) != len(configs):
            raise SweepError("the sweep lists a configuration twice")
        self._check_directory(resume)
        self.records = {tid: TrialRecord.load(self.record_path(tid)) or TrialRecord(tid) for tid in self.configs}
        self.tries = dict.fromkeys(self.configs, 0)  # attempts in this invocation (records count all)

    def record_path(self, tid: str) -> Path:
        return self.directory / TRIALS_DIR / f"{tid}.json"

    def run_dir(self, tid: str) -> Path:
        return self.runs_root / tid

    def save(self, tid: str) -> None:
        self.records[tid].save(self.record_path(tid))

    def _check_directory(self, resume: bool) -> None:
        from phn.results import write_json

        path = self.directory / SWEEP_FILE
        if self.directory.exists() and not self.directory.is_dir():
            raise SweepError(f"sweep directory {self.directory} is a file")
        trials = [{"id": tid, "config": to_dict(cfg)} for tid, cfg in self.configs.items()]  # in grid order
        if path.exists():
            try:
                old = [trial["id"] for trial in json.loads(path.read_text()).get("trials", [])]
            except (OSError, json.JSONDecodeError, TypeError, KeyError) as error:
                raise SweepError(f"{path} is unreadable ({error}); use another directory") from None
            if set(old) != set(self.configs):
                extra, missing = sorted(set(self.configs) - set(old)), sorted(set(old) - set(self.configs))
                raise SweepError(f"{self.directory} holds another sweep ({len(missing)} of its trials not in this "
                                 f"grid, {len(extra)} new: {', '.join((missing + extra)[:3])}...); use another "
                                 "directory")
            unfinished = [tid for tid in old if (TrialRecord.load(self.directory / TRIALS_DIR / f"{tid}.json")
                                                 or TrialRecord(tid)).status != "done"]
            if unfinished and not resume:
                raise SweepError(f"{self.directory} holds an unfinished sweep ({len(old) - len(unfinished)} of "
                                 f"{len(old)} trials done); resume it with --resume (resume=True)")
            recorded = json.loads(path.read_text()).get("runs_root")
            if recorded:
                self.runs_root = Path(recorded)  # where this sweep's trials were run
        else:
            write_json(path, {"trials": trials, "runs_root": str(self.runs_root.resolve()),
                              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})

    def finished(self, tid: str, streams: dict[str, Any]) -> bool:
        """True when the trial's run directory holds its finished results (the cache's own test)."""
        from phn.rundir import completed_key
        from phn.train import cache_key

        done = completed_key(self.run_dir(tid))
        if done is None:
            return False
        cfg = self.configs[tid]
        key = json.dumps(to_dict(cfg.stream), sort_keys=True)
        try:
            if key not in streams:
                streams[key] = cfg.stream.build()
            return done == cache_key(cfg, streams[key])
        except Exception:  # noqa: BLE001 - data unreadable here (e.g. only the nodes have it): let the trial decide
            return False

    def finish(self) -> SweepResult:
        from phn.results import Results

        annotate_concurrency(list(self.records.values()))
        for tid in self.records:
            self.save(tid)
        results, failed = {}, {}
        for tid, record in self.records.items():
            if record.status == "done":
                results[tid] = Results.load(self.run_dir(tid))
            elif record.status == "failed":
                failed[tid] = record.errors[-1] if record.errors else "failed"
        table = trials_table(self.configs, self.records, results)
        summary = summarize(table)
        table.to_csv(self.directory / "trials.csv", index=False)
        summary.to_csv(self.directory / "summary.csv", index=False)
        return SweepResult(self.directory, table, summary, results, dict(self.configs), failed)


def run_sweep(configs: Sequence[RunConfig], directory: str | os.PathLike, options: SweepOptions | None = None,
              resume: bool = False, runs_root: str | os.PathLike | None = None) -> SweepResult:
    """Run every configuration as a trial (see the module docstring); returns the tables and results.

    Args:
        configs: the trials, e.g. :func:`grid`.
        directory: the sweep directory (created).
        options: executor and resources (:class:`SweepOptions`).
        resume: continue a sweep this directory holds (else an unfinished one there is refused).
        runs_root: where the trials' run directories go (default ``<directory>/runs``); the notebooks
            pass the results cache (``runs/``) so their in-process and Ray runs are the same runs.

    Raises:
        SweepError: another sweep in ``directory``, an unfinished one without ``resume``, Ray missing.
    """
    options = options or SweepOptions()
    sweep = _Sweep(Path(directory), configs, None if runs_root is None else Path(runs_root), resume)
    streams: dict[str, Any] = {}
    todo = []
    for tid in sweep.configs:
        record = sweep.records[tid]
        if sweep.finished(tid, streams):
            if record.status != "done":
                record.status, record.skipped = "done", True
                sweep.save(tid)
            continue
        record.status = "pending"
        sweep.save(tid)
        todo.append(tid)
    streams.clear()
    if todo:
        runner = _run_ray if options.executor == "ray" else _run_inprocess
        runner(sweep, todo, options)
    return sweep.finish()


# ----------------------------------------------------------------------------- executors
class _Progress:
    """A tqdm bar over the trials: done / running / failed."""

    def __init__(self, sweep: _Sweep, todo: Sequence[str], enabled: bool | None) -> None:
        from tqdm import tqdm  # not tqdm.auto: without ipywidgets it warns in every notebook on import

        self.sweep, self.running = sweep, 0
        skipped = len(sweep.configs) - len(todo)
        self.bar = tqdm(total=len(sweep.configs), initial=skipped, desc="sweep", unit="trial",
                        disable=enabled is False, dynamic_ncols=True)
        self.show()

    def show(self) -> None:
        statuses = [r.status for r in self.sweep.records.values()]
        self.bar.set_postfix_str(f"done {statuses.count('done')}, running {self.running}, "
                                 f"failed {statuses.count('failed')}")

    def step(self) -> None:
        self.bar.update(1)
        self.show()

    def close(self) -> None:
        self.bar.close()


def _started(sweep: _Sweep, tid: str) -> None:
    record = sweep.records[tid]
    record.status, record.attempts = "running", record.attempts + 1
    sweep.tries[tid] += 1
    sweep.save(tid)


def _succeeded(sweep: _Sweep, tid: str, info: Mapping[str, Any]) -> None:
    record = sweep.records[tid]
    record.status = "done"
    if not (info.get("cached") and record.timed):  # keep the interval measured by an earlier attempt
        for key, value in info.items():
            setattr(record, key, value)
    sweep.save(tid)


def _failed(sweep: _Sweep, tid: str, error: str, retries: int) -> bool:
    """Record a failed attempt; True when the trial gets another."""
    record = sweep.records[tid]
    record.errors.append(error)
    again = sweep.tries[tid] <= retries
    record.status = "pending" if again else "failed"
    sweep.save(tid)
    log.warning("trial %s failed (attempt %d): %s%s", tid, record.attempts, error,
                "; retrying" if again else "; giving up")
    return again


def _run_inprocess(sweep: _Sweep, todo: Sequence[str], options: SweepOptions) -> None:
    import torch

    progress = _Progress(sweep, todo, options.progress)
    threads = torch.get_num_threads()
    try:
        for tid in todo:
            while True:
                _started(sweep, tid)
                progress.running = 1
                progress.show()
                try:
                    info = execute_trial(to_dict(sweep.configs[tid]), str(sweep.run_dir(tid)), options.threads)
                except KeyboardInterrupt:
                    raise
                except Exception as error:  # noqa: BLE001 - a failed trial is reported, not fatal
                    if _failed(sweep, tid, _one_line(error), options.retries):
                        continue
                else:
                    _succeeded(sweep, tid, info)
                break
            progress.running = 0
            progress.step()
    finally:
        torch.set_num_threads(threads)
        progress.close()


def _import_ray():
    try:
        import ray
    except ImportError:
        raise SweepError(RAY_MISSING) from None
    return ray


def _run_ray(sweep: _Sweep, todo: Sequence[str], options: SweepOptions) -> None:
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = {"include_dashboard": False, "configure_logging": True,
                                  "logging_level": logging.WARNING, "log_to_driver": False}
        if options.address:
            kwargs["address"] = options.address
        else:
            kwargs["num_cpus"] = os.cpu_count()
            kwargs["num_gpus"] = _local_gpus()
        try:
            ray.init(**kwargs)
        except Exception as error:  # noqa: BLE001 - unreachable address, no resources, ...
            raise SweepError(f"could not start or reach Ray ({options.address or 'on this machine'}): "
                             f"{_one_line(error)}") from None
    task = ray.remote(execute_trial).options(num_cpus=options.cpus_per_trial, num_gpus=options.gpus_per_trial,
                                             max_retries=0)
    limit = options.max_concurrent or len(todo)
    queue, pending = list(todo), {}
    progress = _Progress(sweep, todo, options.progress)
    try:
        while queue or pending:
            while queue and len(pending) < limit:
                tid = queue.pop(0)
                _started(sweep, tid)
                pending[task.remote(to_dict(sweep.configs[tid]), str(sweep.run_dir(tid)), options.threads)] = tid
            progress.running = len(pending)
            progress.show()
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=2.0)
            for ref in ready:
                tid = pending.pop(ref)
                try:
                    info = ray.get(ref)
                except Exception as error:  # noqa: BLE001 - task error, worker or node died
                    if _failed(sweep, tid, _ray_error(error), options.retries):
                        queue.append(tid)
                        continue
                else:
                    _succeeded(sweep, tid, info)
                progress.running = len(pending)
                progress.step()
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        progress.close()
        if started_here:
            ray.shutdown()


def _ray_error(error: BaseException) -> str:
    """The cause of a Ray task error in one line (the trial's own exception where there is one)."""
    cause = getattr(error, "cause", None)
    return _one_line(cause) if isinstance(cause, BaseException) else _one_line(error)


def _local_gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001
        return 0


# ----------------------------------------------------------------------------- tables
def trials_table(configs: Mapping[str, RunConfig], records: Mapping[str, TrialRecord],
                 results: Mapping[str, Any]) -> pd.DataFrame:
    """One row per trial: ``trial``, ``strategy`` (paper label), ``freeze_depth``, ``stream``,
    ``seed``, ``status``, ``attempts``, ``error``, the metrics of :meth:`Results.summary` (percent,
    seconds), and the timing flags ``cached``, ``beside``, ``shared_cores``."""
    rows = []
    for tid, cfg in configs.items():
        record = records.get(tid) or TrialRecord(tid)
        row: dict[str, Any] = {"trial": tid, "strategy": cfg.label, "freeze_depth": cfg.model.freeze_depth,
                               "stream": cfg.stream.name, "seed": cfg.train.seed, "status": record.status,
                               "attempts": record.attempts, "error": record.errors[-1] if record.errors else "",
                               "cached": record.cached or record.skipped, "beside": record.beside,
                               "shared_cores": record.shared_cores}
        if tid in results:
            row |= results[tid].summary()
        rows.append(row)
    return pd.DataFrame(rows)


def summarize(trials: pd.DataFrame, by: Sequence[str] = ("strategy",),
              metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Mean and sample standard deviation over the finished trials of each group (Table 2's mean ± std).

    Returns one row per group, in the order groups first appear: ``<metric>`` and ``<metric>_std``
    (0 for a single seed), ``seeds`` (finished trials), and, where the table has timing flags,
    ``time_beside`` / ``time_shared_cores`` (how many of those trials were timed beside other trials /
    with the cores oversubscribed) and ``time_unknown`` (timed before this sweep, e.g. cached).
    """
    done = trials if "status" not in trials else trials[trials.status == "done"]
    columns = [*by, *metrics, *(f"{m}_std" for m in metrics), "seeds"]
    if done.empty:
        return pd.DataFrame(columns=columns)
    grouped = done.groupby(list(by), sort=False)
    out = grouped[list(metrics)].mean()
    out = out.join(grouped[list(metrics)].std(ddof=1).fillna(0.0).add_suffix("_std"))
    out = out.join(grouped.size().rename("seeds"))
    if "beside" in done:
        flags = done.assign(_beside=done.beside.fillna(0).astype(float) > 0,
                            _shared=done.shared_cores.astype("boolean").fillna(False).astype(bool),
                            _unknown=done.beside.isna())
        counts = flags.groupby(list(by), sort=False)[["_beside", "_shared", "_unknown"]].sum().astype(int)
        out = out.join(counts.rename(columns={"_beside": "time_beside", "_shared": "time_shared_cores",
                                              "_unknown": "time_unknown"}))
    return out.reset_index()


def _mean_std(mean: float, std: float, digits: int) -> str:
    return "" if mean is None or (isinstance(mean, float) and math.isnan(mean)) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def timing_note(row: Any) -> str:
    """How the times of a :func:`summarize` row were measured, for the time cell of a table: ``""``
    when every trial trained alone in this sweep (or the row has no timing flags), else e.g.
    ``"(1 of 2 on shared cores)"``, ``"(2 of 2 beside other trials)"``, ``"(1 of 3 timed before this sweep)"``."""
    notes = []
    seeds = getattr(row, "seeds", 0)
    if getattr(row, "time_shared_cores", 0):
        notes.append(f"{row.time_shared_cores} of {seeds} on shared cores")
    elif getattr(row, "time_beside", 0):
        notes.append(f"{row.time_beside} of {seeds} beside other trials")
    if getattr(row, "time_unknown", 0):
        notes.append(f"{row.time_unknown} of {seeds} timed before this sweep")
    return f"({'; '.join(notes)})" if notes else ""


def paper_table(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`summarize` as the paper prints it: ACA, forgetting, learning accuracy (percent) and
    train time (s) as ``mean ± std`` with the number of seeds; a time cell says how its times were
    measured where any trial ran beside others (:func:`timing_note`)."""
    rows = []
    for r in summary.itertuples(index=False):
        note = timing_note(r)
        rows.append({"strategy": r.strategy, "ACA (%)": _mean_std(r.aca, r.aca_std, 1),
                     "forgetting (%)": _mean_std(r.forgetting, r.forgetting_std, 1),
                     "learning accuracy (%)": _mean_std(r.learning_accuracy, r.learning_accuracy_std, 1),
                     "train time (s)": _mean_std(r.train_time_s, r.train_time_s_std, 1) + (f" {note}" if note else ""),
                     "seeds": r.seeds})
    return pd.DataFrame(rows)


def load_sweep(directory: str | os.PathLike) -> SweepResult:
    """The tables and results of a sweep directory, as they are (unfinished trials show their status)."""
    from phn.results import Results

    directory = Path(directory)
    path = directory / SWEEP_FILE
    if not path.is_file():
        raise SweepError(f"{directory} holds no sweep ({SWEEP_FILE} missing)")
    data = json.loads(path.read_text())
    configs = {trial["id"]: from_dict(RunConfig, trial["config"]) for trial in data["trials"]}
    runs_root = Path(data.get("runs_root") or directory / RUNS_DIR)
    records = {tid: TrialRecord.load(directory / TRIALS_DIR / f"{tid}.json") or TrialRecord(tid) for tid in configs}
    annotate_concurrency(list(records.values()))
    results = {tid: Results.load(runs_root / tid) for tid, r in records.items() if r.status == "done"}
    failed = {tid: (r.errors[-1] if r.errors else "failed") for tid, r in records.items() if r.status == "failed"}
    table = trials_table(configs, records, results)
    return SweepResult(directory, table, summarize(table), results, configs, failed)


def default_sweep_dir(configs: Sequence[RunConfig], runs_root: str | os.PathLike | None = None) -> Path:
    """Where :func:`run_configs` records a sweep of ``configs``: ``<runs_root>/sweeps/<digest of the trial ids>``."""
    from phn.rundir import digest
    from phn.train import runs_dir

    return Path(runs_root or runs_dir()) / "sweeps" / digest(sorted(trial_id(cfg) for cfg in configs))


def run_configs(configs: Sequence[RunConfig], runs_root: str | os.PathLike | None = None,
                executor: Executor = "inprocess", address: str | None = None,
                sweep_dir: str | os.PathLike | None = None, progress: bool | None = None,
                desc: str = "runs", reuse_other_code: bool = False,
                **options: Any) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """The experiments' path to their runs: (trial id -> Results of every configuration, the sweep's
    :func:`trials_table` with its timing flags, or None in process).

    In process (the default, no ``sweep_dir``) one after another with a progress bar, through
    :func:`phn.train.run_config` with ``resume=True``; otherwise as a sweep (:func:`run_sweep`, with
    ``resume=True``) on ``executor`` (``"ray"``: ``address``, ``options`` of :class:`SweepOptions`),
    recorded in ``sweep_dir`` (default ``<runs_root>/sweeps/<digest of the trials>``), where a finished
    sweep renders without training. Run directories are ``<runs_root>/<trial id>`` (``runs_root``
    default: the results cache) either way, so both executors share the cache.

    ``reuse_other_code`` (in process only): finished results of the same settings and data computed by
    other ``phn`` code count as finished (:func:`phn.train.run`'s option; for a study whose training path
    did not change while other modules did).

    Raises:
        RuntimeError: a trial of the sweep failed after its retries (the others finished).
        SweepError: ``reuse_other_code`` with a sweep executor.
    """
    from tqdm import tqdm  # not tqdm.auto: without ipywidgets it warns in every notebook on import

    from phn.train import run_config, runs_dir

    if executor not in EXECUTORS:
        raise SweepError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    root = Path(runs_root or runs_dir())
    if executor == "inprocess" and sweep_dir is None:
        out = {}
        bar = tqdm(configs, desc=desc, disable=progress is False, dynamic_ncols=True)
        for cfg in bar:
            bar.set_postfix_str(f"{cfg.label} seed {cfg.train.seed}")
            out[trial_id(cfg)] = run_config(cfg, resume=True, out_dir=root / trial_id(cfg), progress=progress,
                                            reuse_other_code=reuse_other_code)
        return out, None
    if reuse_other_code:
        raise SweepError("reuse_other_code is only supported in process (executor 'inprocess', no sweep_dir)")
    sweep_dir = sweep_dir or default_sweep_dir(configs, root)
    result = run_sweep(configs, sweep_dir, SweepOptions(executor=executor, address=address, progress=progress,
                                                        **options), resume=True, runs_root=root)
    if result.failed:
        raise RuntimeError(f"{len(result.failed)} trial(s) of the sweep in {sweep_dir} failed: "
                           + "; ".join(f"{tid}: {error}" for tid, error in list(result.failed.items())[:3]))
    return result.results, result.trials


__all__ = [
    "AXIS_ALIASES", "SweepError", "SweepOptions", "SweepResult", "TrialRecord", "annotate_concurrency",
    "default_sweep_dir", "execute_trial", "grid", "load_sweep", "paper_table", "run_configs", "run_sweep", "summarize",
    "timing_note", "trial_id", "trials_table",
]
