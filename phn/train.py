"""The runner: one strategy over one stream, with evaluation, checkpoints, resume and a results cache.

``run(stream, strategy, train_cfg, out_dir=...)`` trains experience after experience, evaluates on
every experience seen so far after each one, and returns :class:`phn.results.Results`.

Determinism: at the start of experience ``i`` every global RNG is reseeded from ``(seed, i)`` and the
data loader gets its own generator, so a run resumed after experience ``i`` continues exactly as an
uninterrupted one (strategies keep their own RNGs in their state dicts). On CPU the final accuracy
matrix of a resumed run is bit-identical to an uninterrupted run's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from phn.config import RunConfig, TrainConfig, from_dict, to_dict
from phn.results import Results, write_json
from phn.strategies.base import Strategy

CHECKPOINT = "checkpoint.pt"
log = logging.getLogger("phn")
EVAL_SEED_OFFSET = 1_000_000  # evaluation orders get seeds apart from training experiences


def runs_dir() -> Path:
    """Where run directories go by default: ``$PHN_RUNS``, else ``<repository>/runs``."""
    return Path(os.environ.get("PHN_RUNS") or Path(__file__).resolve().parent.parent / "runs")


def run_dir_for(cfg: RunConfig, root: str | os.PathLike | None = None) -> Path:
    """The results-cache directory of a configuration: ``<root>/<label>-<digest>``."""
    return Path(root or runs_dir()) / f"{cfg.label}-{cfg.digest()}"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) global RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def experience_seed(seed: int, experience: int) -> int:
    """A distinct, reproducible seed per (run seed, experience)."""
    return int(np.random.SeedSequence([seed, experience]).generate_state(1)[0])


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else CPU; a device this machine lacks is a ConfigError."""
    from phn.config import ConfigError, parse_device

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = parse_device(device)
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {device!r}: CUDA is not available on this machine; use --device cpu "
                              "(device='cpu') or auto")
        if (resolved.index or 0) >= count:
            raise ConfigError(f"device {device!r}: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {device!r}: MPS is not available on this machine; use --device cpu or auto")
    return resolved


def evaluation_order(labels: Sequence[int], order: str, seed: int) -> list[int]:
    """Indices in which a test set is evaluated.

    ``"interleaved"``: a seeded shuffle, so evaluation batches mix classes. ``"sorted"``: grouped by
    class in index order, as Avalanche delivers test sets (the authors' pipeline). ``"index"``: the
    dataset's own order (ascending file index; classes interleave as they do in the file), the order of
    the authors' interleaved evaluation. With batch-statistics normalisation the order changes
    predictions; with running statistics it changes nothing.
    """
    if order == "interleaved":
        return torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed)).tolist()
    if order == "sorted":
        return sorted(range(len(labels)), key=lambda i: (int(labels[i]), i))
    if order == "index":
        return list(range(len(labels)))
    raise ValueError(f"unknown evaluation order {order!r}; use 'interleaved', 'sorted' or 'index'")


def _labels(dataset: Dataset) -> list[int]:
    from phn.data import dataset_targets

    return [int(v) for v in dataset_targets(dataset)]


class LatentCache:
    """Frozen-prefix outputs of test sets, computed once per (evaluation order, experience).

    Once a strategy's prefix is frozen, its outputs on a (deterministically ordered) test set never
    change, so later evaluations only run the part after the prefix. Predictions are identical to
    recomputing them; only time changes. Entries are keyed by order too, because a batch-statistics
    prefix gives different outputs for different batches. At most ``max_floats`` values are kept (on
    the strategy's device); test sets beyond that are evaluated from images as usual.
    """

    def __init__(self, max_floats: int = 2**27) -> None:
        self.max_floats = max_floats
        self.floats = 0
        self.batches: dict[tuple[str, int], list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def add(self, key: tuple[str, int], batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        size = sum(z.numel() for z, _ in batches)
        if self.floats + size <= self.max_floats:
            self.batches[key] = batches
            self.floats += size


@torch.no_grad()
def evaluate(strategy: Strategy, experience: Any, cfg: TrainConfig, device: torch.device,
             cache: LatentCache | None = None, order: str | None = None) -> float:
    """Test accuracy of ``strategy`` on ``experience`` (task id known, as in the paper).

    ``order`` (default ``cfg.eval_order``) is the order of the test images, hence which images
    share an evaluation batch (:func:`evaluation_order`). With a ``cache``, frozen-prefix outputs are
    computed once per test set and order, and reused.
    """
    task_id = experience.task_id
    order = order or cfg.eval_order
    key = (order, task_id)
    if cache is not None and key in cache.batches:
        pairs = ((strategy.predict_latent(z, task_id), y) for z, y in cache.batches[key])
        return _accuracy(pairs)
    indices = evaluation_order(_labels(experience.test), order, experience_seed(cfg.seed, EVAL_SEED_OFFSET + task_id))
    loader = DataLoader(
        torch.utils.data.Subset(experience.test, indices),
        batch_size=cfg.eval_batch_size, shuffle=False, num_workers=cfg.num_workers,
    )
    latents: list[tuple[torch.Tensor, torch.Tensor]] = []

    def predictions():
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            z = strategy.frozen_latents(x) if cache is not None else None
            if z is None:
                yield strategy.predict(x, task_id), y
            else:
                latents.append((z, y))
                yield strategy.predict_latent(z, task_id), y

    accuracy = _accuracy(predictions())
    if cache is not None and latents:
        cache.add(key, latents)
    return accuracy


def _accuracy(pairs) -> float:
    correct = total = 0
    for logits, y in pairs:
        correct += int((logits.argmax(dim=1) == y).sum())
        total += int(y.numel())
    return correct / max(total, 1)


@contextlib.contextmanager
def preserved_rng(device: torch.device):
    """Run a block without changing any RNG the training uses (torch CPU and CUDA, Python, NumPy),
    e.g. an evaluation in the middle of an experience (its data loader draws a seed)."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        yield
    random.setstate(python_state)
    np.random.set_state(numpy_state)


def training_batches(dataset: Dataset, cfg: TrainConfig, device: torch.device, generator: torch.Generator):
    """The training batches of one experience: :class:`phn.data.batched.DeviceBatches` when
    ``cfg.data_path == "device"`` and the dataset allows it, else a shuffling DataLoader with the
    per-item transforms. Both draw every random number from ``generator`` or from RNGs the runner
    seeds per experience, so runs and resumed runs are reproducible."""
    from phn.data.batched import DeviceBatches

    if cfg.data_path == "device" and DeviceBatches.supports(dataset):
        return DeviceBatches(dataset, cfg.batch_size, device, generator)
    return DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=False,
                      num_workers=cfg.num_workers, generator=generator, pin_memory=device.type == "cuda")


def _peak_memory(device: torch.device) -> float:
    if device.type == "cuda":
        return float(torch.cuda.max_memory_allocated(device))
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # KiB on Linux


class DivergenceError(RuntimeError):
    """The training loss became NaN or infinite; the run stopped before writing any result."""


EXPLOSIVE_FACTOR = 100.0
"""A finite task loss above ``EXPLOSIVE_FACTOR`` times the run's first loss (the loss of its first step,
before any update: about ln C for a fresh network) is explosive: the run goes on but warns, in the
log and in ``metrics.json`` (``warnings``), once per experience. The task loss is the step's ``"ce"``
where the strategy logs one, else its ``"loss"``: the output regulariser of Eq. 7 starts each later
experience large by design (the new task embedding's outputs are far from the old ones) and is not a
sign of divergence. Non-finite values of the full loss still stop the run (:class:`DivergenceError`)."""


def _diverged(what: str, run_dir: Path | None) -> DivergenceError:
    """The one-line error of a diverged run: ``what`` went non-finite; nothing was written."""
    kept = f", the last checkpoint in {run_dir} is intact" if run_dir is not None else ""
    return DivergenceError(f"training diverged: {what}; no results written{kept} (lower the learning rate or beta)")


def _check_parameters(strategy: Strategy, where: str, run_dir: Path | None) -> None:
    """Raise :class:`DivergenceError` if a parameter of ``strategy`` is NaN or infinite (checked
    before every checkpoint and evaluation: the last step's loss was finite, but its update may not be)."""
    for name, module in strategy.modules().items():
        for parameter_name, parameter in module.named_parameters():
            if not bool(torch.isfinite(parameter).all()):
                raise _diverged(f"{name}.{parameter_name} became NaN or infinite {where}", run_dir)


# ----------------------------------------------------------------------------- checkpoints
def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint written by :func:`run`, loaded with ``torch.load(weights_only=True)``: only
    tensors and plain containers, so a file from elsewhere cannot run code while it loads.

    Raises:
        phn.rundir.CorruptRunError: truncated, not a checkpoint, or holding anything but plain data
            (the message names the file).
    """
    from phn.rundir import CorruptRunError

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - unpickling fails in many ways; all mean "unusable"
        reason = " ".join(str(error).split())[:200]
        raise CorruptRunError(f"{path} cannot be loaded (truncated, or not a plain-data phn checkpoint: "
                              f"{type(error).__name__}: {reason}); rerun without --resume to start over") from None
    if not isinstance(state, dict) or "experience" not in state or "config" not in state:
        raise CorruptRunError(f"{path} is not a phn checkpoint; rerun without --resume to start over")
    return state


def _rng_state(device: torch.device) -> dict[str, Any]:
    """Every global RNG the training uses, as plain data (loadable with ``weights_only=True``)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached)],
            "python": random.getstate()}


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _plain(matrices: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in matrices.items()}


def kept_checkpoint(experience: int) -> str:
    """File name of the checkpoint kept after ``experience`` (``run(keep_checkpoints=...)``)."""
    return f"checkpoint-e{experience}.pt"


def versions() -> dict[str, str]:
    """Library versions recorded with every run."""
    import phn

    return {"phn": phn.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": sys.version.split()[0]}


def cache_key(cfg: RunConfig, stream: Sequence[Any] | None = None) -> dict[str, str | None]:
    """The key a finished run of ``cfg`` must carry in its ``complete.json`` for :func:`run_config` to
    reuse it (:func:`phn.rundir.run_key` of the settings, this ``phn`` source and the data files
    ``stream`` reads; ``stream`` is built from ``cfg`` when not given)."""
    stream = cfg.stream.build() if stream is None else stream
    from phn.rundir import run_key

    return run_key(_record(to_dict(cfg), stream))


def _record(config: dict[str, Any] | None, stream: Sequence[Any]) -> dict[str, Any]:
    """The config saved as config.json: the settings plus versions, code and data provenance."""
    from phn.data import stream_provenance
    from phn.provenance import code_provenance

    recorded = {**(config or {}), "versions": versions(), "code": code_provenance(),
                "data": stream_provenance(stream)}
    return json.loads(json.dumps(recorded, default=str))


def run(
    stream: Sequence[Any],
    strategy: Strategy,
    cfg: TrainConfig,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    use_cache: bool = True,
    config: dict[str, Any] | None = None,
    progress: bool | None = None,
    cache_latents: bool = True,
    start_from: str | os.PathLike | None = None,
    keep_checkpoints: Sequence[int] = (),
    overwrite: bool = False,
    reuse_other_code: bool = False,
    checkpoint_every_s: float | None = None,
) -> Results:
    """Train ``strategy`` on each experience of ``stream`` in turn and evaluate after each.

    Args:
        stream: experiences (``task_id``, ``train``, ``test``), in order.
        strategy: any :class:`phn.strategies.base.Strategy`.
        cfg: epochs, batch sizes, seed, evaluation order, workers.
        out_dir: run directory (:mod:`phn.rundir`): locked while the run uses it; a checkpoint is
            written after every experience and every epoch (see ``checkpoint_every_s``), the results
            at the end, and the completion marker last.
        resume: continue from the checkpoint in ``out_dir`` (after the last finished experience or
            epoch), if it was written by this run's settings, code and data.
        use_cache: when ``out_dir`` already holds finished results of the same settings, code and
            data, return them (``Results.cached`` is True) instead of training again.
        config: the run's settings as plain data. Saved as config.json together with the library
            ``versions``, the ``code`` that ran (:func:`phn.provenance.code_provenance`) and the
            ``data`` files the stream read (:func:`phn.data.stream_provenance`).
        progress: show tqdm bars; ``None`` shows them only on an interactive terminal.
        cache_latents: compute a frozen prefix's outputs on each test set once (:class:`LatentCache`);
            accuracies are identical either way.
        start_from: a checkpoint file of ANOTHER run (see ``keep_checkpoints``) to continue from,
            after its experience: its strategy state, accuracies, times and logs become this run's
            first experiences. Use it only where that training is identical for this run, e.g. the
            same experience 1 of latent replay at every freeze depth, or of a normal and a noisy
            stream; ``config.json`` records it (``start_from``: the source's experience and config
            digest), so such a run never answers for a run trained from scratch in the cache.
        keep_checkpoints: experiences after which a copy of the checkpoint is kept as
            ``checkpoint-e<i>.pt`` (for other runs' ``start_from``; needs ``out_dir``).
        overwrite: replace the files of a run with other settings in ``out_dir`` (else refused).
        reuse_other_code: return finished results of the same settings and data computed by other
            ``phn`` code (a notice says so) instead of recomputing them.
        checkpoint_every_s: None writes a checkpoint after every epoch; a number writes one after
            an epoch only when that many seconds passed since the last (after every experience
            always). Checkpoint time is not counted in ``train_time`` (``Results.checkpoint_time``).

    Returns:
        The accuracy matrix (``cfg.eval_order``; one more per ``cfg.extra_eval_orders`` in
        ``acc_by_order``, from the same trained model), per-experience times and memory, parameter
        counts, step logs and the rows of diagnostics that ``end_experience`` returned.

    Raises:
        DivergenceError: the loss became NaN or infinite (the last checkpoint stays as it was and no
            results are written).
        phn.rundir.RunDirectoryError: ``out_dir`` is in use, holds another configuration, is a file
            or cannot be written; a checkpoint to resume from is unreadable or from another run.
    """
    from phn import rundir

    source = None
    if start_from is not None:
        source = load_checkpoint(start_from)
        config = {**(config or {}), "start_from": {
            "experience": int(source["experience"]), "config": rundir.digest(rundir.settings(source["config"]))[:12]}}
    config = _record(config, stream)
    run_dir = Path(out_dir) if out_dir is not None else None
    lock = rundir.open_directory(run_dir) if run_dir is not None else None
    try:
        return _run_locked(stream, strategy, cfg, run_dir, lock, resume, use_cache, config, progress,
                               cache_latents, source, start_from, keep_checkpoints, overwrite, reuse_other_code,
                               checkpoint_every_s)
    finally:
        if lock is not None:
            lock.release()


def _run_locked(stream, strategy, cfg, run_dir, lock, resume, use_cache, config, progress, cache_latents,
                source, start_from, keep_checkpoints, overwrite, reuse_other_code, checkpoint_every_s) -> Results:
    from phn import rundir

    state = None
    if run_dir is not None:
        checkpoint_path = run_dir / CHECKPOINT
        if resume and checkpoint_path.exists():
            state = load_checkpoint(checkpoint_path)
        decided = rundir.plan(run_dir, config, resume=resume, use_cache=use_cache, overwrite=overwrite,
                              reuse_other_code=reuse_other_code,
                              checkpoint_config=state["config"] if state is not None else None)
        for notice in decided.notices:  # a plain cache hit is news only to a command-line user
            log.log(logging.INFO if decided.routine else logging.WARNING, "phn: %s", notice)
        if decided.action == "cached":
            cached = Results.load(run_dir)
            cached.cached = True
            return cached
        if decided.action == "fresh":
            state = None
        rundir.clear(run_dir, keep_checkpoints=decided.action == "resume")
        write_json(run_dir / "config.json", config)
    device = strategy.device
    n = len(stream)
    orders = (cfg.eval_order, *cfg.extra_eval_orders)
    acc_by_order = {order: np.full((n, n), np.nan) for order in orders}
    train_time, eval_time, memory, checkpoint_time = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    steps: list[dict[str, Any]] = []
    diagnostics: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    warnings: list[str] = []
    global_step, start, reference_loss = 0, 0, None
    partial = None
    if state is None and source is not None:
        state = source
        if set(state["acc_by_order"]) != set(acc_by_order) or len(state["train_time"]) != n:
            raise ValueError(f"start_from={start_from}: its run has other evaluation orders or another "
                             f"number of experiences than this one")
        if source["config"].get("train") != config.get("train"):
            raise ValueError(f"start_from={start_from}: its run trained with other settings (train section of "
                             "its config differs); its experiences are not this run's")
        if state.get("partial") is not None:
            raise ValueError(f"start_from={start_from}: it was written in the middle of an experience")
        if state["experience"] >= n - 1:
            raise ValueError(f"start_from={start_from}: it ends after experience {state['experience']}, "
                             f"nothing is left to train")
    if state is not None:
        strategy.load_state_dict(state["strategy"])
        acc_by_order = {k: v.numpy().copy() for k, v in state["acc_by_order"].items()}
        train_time, eval_time, memory = (state[k].numpy().copy() for k in ("train_time", "eval_time", "memory"))
        checkpoint_time = state["checkpoint_time"].numpy().copy()
        steps, diagnostics, curves = state["steps"], state["diagnostics"], state["curves"]
        warnings, reference_loss = list(state["warnings"]), state["reference_loss"]
        global_step = state["global_step"]
        start = state["experience"] + 1
        partial = state.get("partial")
    show = sys.stderr.isatty() if progress is None else progress
    cache = LatentCache() if cache_latents else None
    last_checkpoint = time.monotonic()

    def checkpoint(i: int, partial_state: dict[str, Any] | None) -> None:
        """Write checkpoint.pt: after experience i (``partial_state`` None) or within it."""
        began = time.perf_counter()
        saved = {
            "experience": i if partial_state is None else i - 1, "partial": partial_state,
            "strategy": strategy.state_dict(), "acc_by_order": _plain(acc_by_order),
            "train_time": torch.from_numpy(train_time.copy()), "eval_time": torch.from_numpy(eval_time.copy()),
            "memory": torch.from_numpy(memory.copy()), "checkpoint_time": torch.from_numpy(checkpoint_time.copy()),
            "steps": steps, "diagnostics": diagnostics, "curves": curves, "warnings": warnings,
            "reference_loss": reference_loss, "global_step": global_step, "config": config,
        }
        _save_checkpoint(run_dir / CHECKPOINT, saved)
        if partial_state is None and i in keep_checkpoints:
            _save_checkpoint(run_dir / kept_checkpoint(i), saved)
        lock.heartbeat(force=True)
        checkpoint_time[i] += time.perf_counter() - began

    for i in range(start, n):
        experience = stream[i]
        seed = experience_seed(cfg.seed, i)
        seed_everything(seed)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        generator = torch.Generator().manual_seed(seed)
        loader = training_batches(experience.train, cfg, device, generator)
        tic = time.perf_counter()
        strategy.begin_experience(experience)
        step, curve_time, first_epoch, warned = 0, 0.0, 0, False
        if partial is not None:  # resume within experience i, after epoch partial["epochs_done"]
            strategy.load_state_dict(state["strategy"])  # again: begin_experience may reset task state
            _set_rng_state(partial["rng"], device)
            generator.set_state(partial["loader_generator"])
            step, curve_time, first_epoch = partial["step"], partial["curve_time"], partial["epochs_done"]
            warned = partial["warned"]
            tic = time.perf_counter() - partial["elapsed"]
            partial = None
        total_steps = cfg.epochs * len(loader)

        def curve_point(epoch: int) -> float:
            """Evaluate experiences 0..i now (accuracy over time); returns the seconds it took."""
            began = time.perf_counter()
            with preserved_rng(device):
                for j in range(i + 1):
                    curves.append({"trained_experience": i, "epoch": epoch, "step": step,
                                   "global_step": global_step + step, "evaluated_experience": j,
                                   "accuracy": evaluate(strategy, stream[j], cfg, device, cache)})
            return time.perf_counter() - began

        if cfg.eval_every and first_epoch == 0:
            curve_time += curve_point(0)
        for epoch in range(first_epoch, cfg.epochs):
            bar = tqdm(loader, desc=f"experience {i + 1}/{n} epoch {epoch + 1}/{cfg.epochs}",
                       disable=not show, leave=False, dynamic_ncols=True)
            for x, y in bar:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                logs = strategy.train_step(x, y, experience.task_id)
                loss = float(logs.get("loss", 0.0))
                if not math.isfinite(loss):
                    raise _diverged(f"loss {loss} at experience {i + 1}/{n}, epoch {epoch + 1}, step {step + 1}",
                                    run_dir)
                task_loss = float(logs.get("ce", loss))  # a regularised strategy's penalty is not compared
                if reference_loss is None:
                    reference_loss = task_loss
                elif not warned and task_loss > EXPLOSIVE_FACTOR * max(reference_loss, 1e-8):
                    warned = True
                    warnings.append(f"explosive loss {task_loss:.3g} at experience {i + 1}, epoch {epoch + 1}, step "
                                    f"{step + 1}: more than {EXPLOSIVE_FACTOR:g} x the first loss "
                                    f"({reference_loss:.3g})")
                    log.warning("phn: %s", warnings[-1])
                if cfg.log_steps:
                    steps.append({"experience": i, "epoch": epoch, "step": step, **logs})
                step += 1
                if show:
                    bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
                if cfg.eval_every and cfg.eval_unit == "step" and step % cfg.eval_every == 0 and step < total_steps:
                    curve_time += curve_point(epoch)
                if lock is not None:
                    lock.heartbeat()
            if cfg.eval_every and cfg.eval_unit == "epoch" and (epoch + 1) % cfg.eval_every == 0 \
                    and step < total_steps:
                curve_time += curve_point(epoch)
            due = checkpoint_every_s is None or time.monotonic() - last_checkpoint >= checkpoint_every_s
            if run_dir is not None and epoch + 1 < cfg.epochs and due:
                _check_parameters(strategy, f"in experience {i + 1}/{n}, epoch {epoch + 1}", run_dir)
                checkpoint(i, {"epochs_done": epoch + 1, "step": step, "curve_time": curve_time,
                               "elapsed": time.perf_counter() - tic, "warned": warned,
                               "rng": _rng_state(device), "loader_generator": generator.get_state()})
                last_checkpoint = time.monotonic()
        _check_parameters(strategy, f"in experience {i + 1}/{n}", run_dir)
        diagnostics += [{"experience": i, **row} for row in strategy.end_experience(experience) or ()]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        # curve evaluations and checkpoint writes are not training
        train_time[i] = time.perf_counter() - tic - curve_time - checkpoint_time[i]
        memory[i] = _peak_memory(device)
        tic = time.perf_counter()
        for order, acc in acc_by_order.items():
            for j in range(i + 1):
                acc[i, j] = evaluate(strategy, stream[j], cfg, device, cache, order)
        eval_time[i] = time.perf_counter() - tic + curve_time
        if cfg.eval_every:  # the end of the experience: the accuracy matrix row
            curves += [{"trained_experience": i, "epoch": max(cfg.epochs - 1, 0), "step": step,
                        "global_step": global_step + step, "evaluated_experience": j,
                        "accuracy": float(acc_by_order[cfg.eval_order][i, j])} for j in range(i + 1)]
        global_step += step
        if run_dir is not None:
            checkpoint(i, None)
            last_checkpoint = time.monotonic()
    results = Results(
        acc=acc_by_order[cfg.eval_order], train_time=train_time, eval_time=eval_time, peak_memory=memory,
        parameter_count=strategy.parameter_count(), stored_floats=strategy.stored_floats(),
        steps=pd.DataFrame(steps), config=config, acc_by_order=acc_by_order,
        diagnostics=pd.DataFrame(diagnostics), curves=pd.DataFrame(curves), warnings=warnings,
        checkpoint_time=checkpoint_time,
    )
    if run_dir is not None:
        results.save(run_dir)
    return results


def build_strategy(cfg: RunConfig, stream: Sequence[Any]) -> Strategy:
    """The freshly initialised strategy that ``cfg`` describes for ``stream`` (every RNG seeded with
    ``cfg.train.seed`` first, as :func:`run_config` does)."""
    from phn.strategies import make_strategy

    seed_everything(cfg.train.seed)
    return make_strategy(
        cfg.strategy, num_tasks=len(stream), num_classes=max(len(e.classes) for e in stream),
        model_cfg=cfg.model, hyper_cfg=cfg.hyper, lr=cfg.train.lr, device=resolve_device(cfg.train.device),
        batch_size=cfg.train.batch_size, amp=cfg.train.amp, seed=cfg.train.seed,
    )


def load_strategy(run_dir: str | os.PathLike, stream: Sequence[Any] | None = None) -> Strategy:
    """The trained strategy of a run directory, rebuilt from its ``config.json`` and the state in
    its ``checkpoint.pt`` (after the last finished experience), e.g. to look at generated filters.

    Args:
        run_dir: a run directory written by :func:`run_config`.
        stream: the run's stream, if already built (else built from the config).
    """
    from phn.rundir import read_json

    run_dir = Path(run_dir)
    cfg = from_dict(RunConfig, read_json(run_dir / "config.json"))
    strategy = build_strategy(cfg, stream if stream is not None else cfg.stream.build())
    state = load_checkpoint(run_dir / CHECKPOINT)
    if state.get("partial") is not None:
        from phn.rundir import CorruptRunError

        raise CorruptRunError(f"{run_dir / CHECKPOINT} was written in the middle of experience "
                              f"{state['experience'] + 2}: the run did not finish; resume it first")
    strategy.load_state_dict(state["strategy"])
    return strategy


def run_config(
    cfg: RunConfig,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    use_cache: bool = True,
    progress: bool | None = None,
    start_from: str | os.PathLike | None = None,
    keep_checkpoints: Sequence[int] = (),
    **options: Any,
) -> Results:
    """Build the stream and the strategy that ``cfg`` describes and :func:`run` them.

    The model is initialised after seeding every RNG with ``cfg.train.seed``; the stream's class
    order comes from ``cfg.stream.seed`` through a local generator. ``start_from``,
    ``keep_checkpoints`` and ``options`` (``overwrite``, ``reuse_other_code``,
    ``checkpoint_every_s``) are passed to :func:`run`.
    """
    resolve_device(cfg.train.device)  # a device this machine lacks fails before the data is read
    stream = cfg.stream.build()
    strategy = build_strategy(cfg, stream)
    return run(stream, strategy, cfg.train, out_dir=out_dir, resume=resume, use_cache=use_cache,
               config=to_dict(cfg), progress=progress, start_from=start_from, keep_checkpoints=keep_checkpoints,
               **options)
