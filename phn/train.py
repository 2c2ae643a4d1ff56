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
    """``"auto"`` picks CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


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


def _peak_memory(device: torch.device) -> float:
    if device.type == "cuda":
        return float(torch.cuda.max_memory_allocated(device))
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # KiB on Linux


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def kept_checkpoint(experience: int) -> str:
    """File name of the checkpoint kept after ``experience`` (``run(keep_checkpoints=...)``)."""
    return f"checkpoint-e{experience}.pt"


def _comparable(config: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (config or {}).items() if k != "versions"}


def _digest(config: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def versions() -> dict[str, str]:
    """Library versions recorded with every run."""
    import phn

    return {"phn": phn.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": sys.version.split()[0]}


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
) -> Results:
    """Train ``strategy`` on each experience of ``stream`` in turn and evaluate after each.

    Args:
        stream: experiences (``task_id``, ``train``, ``test``), in order.
        strategy: any :class:`phn.strategies.base.Strategy`.
        cfg: epochs, batch sizes, seed, evaluation order, workers.
        out_dir: run directory; when given, a checkpoint is written after every experience and the
            results at the end (atomically).
        resume: continue after the last finished experience of the checkpoint in ``out_dir``.
        use_cache: when ``out_dir`` already holds finished results of the same ``config``, return
            them instead of training again.
        config: the run's full configuration as plain data (saved as config.json, compared for the
            cache and on resume).
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

    Returns:
        The accuracy matrix (``cfg.eval_order``; one more per ``cfg.extra_eval_orders`` in
        ``acc_by_order``, from the same trained model), per-experience times and memory, parameter
        counts, step logs and the rows of diagnostics that ``end_experience`` returned.
    """
    source = None
    if start_from is not None:
        source = torch.load(start_from, map_location="cpu", weights_only=False)
        config = {**(config or {}), "start_from": {
            "experience": int(source["experience"]), "config": _digest(_comparable(source["config"]))}}
    config = json.loads(json.dumps({**(config or {}), "versions": versions()}, default=str))
    run_dir = Path(out_dir) if out_dir is not None else None
    if run_dir is not None and use_cache and (run_dir / "metrics.json").exists():
        cached = Results.load(run_dir)
        if _comparable(cached.config) == _comparable(config):
            return cached
    device = strategy.device
    n = len(stream)
    orders = (cfg.eval_order, *cfg.extra_eval_orders)
    acc_by_order = {order: np.full((n, n), np.nan) for order in orders}
    train_time, eval_time, memory = np.zeros(n), np.zeros(n), np.zeros(n)
    steps: list[dict[str, Any]] = []
    diagnostics: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    global_step = 0
    start = 0
    state = None
    if resume and run_dir is not None and (run_dir / CHECKPOINT).exists():
        state = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=False)
        if _comparable(state["config"]) != _comparable(config):
            raise ValueError(f"{run_dir / CHECKPOINT} was written by a different configuration; "
                             "use another out_dir or resume=False")
    elif source is not None:
        state = source
        if set(state["acc_by_order"]) != set(acc_by_order) or len(state["train_time"]) != n:
            raise ValueError(f"start_from={start_from}: its run has other evaluation orders or another "
                             f"number of experiences than this one")
        if source["config"].get("train") != config.get("train"):
            raise ValueError(f"start_from={start_from}: its run trained with other settings (train section of "
                             "its config differs); its experiences are not this run's")
        if state["experience"] >= n - 1:
            raise ValueError(f"start_from={start_from}: it ends after experience {state['experience']}, "
                             f"nothing is left to train")
    if state is not None:
        strategy.load_state_dict(state["strategy"])
        acc_by_order, train_time, eval_time, memory = (
            state["acc_by_order"], state["train_time"], state["eval_time"], state["memory"])
        steps, diagnostics, curves = state["steps"], state["diagnostics"], state["curves"]
        global_step = state["global_step"]
        start = state["experience"] + 1
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", config)
    show = sys.stderr.isatty() if progress is None else progress
    cache = LatentCache() if cache_latents else None
    for i in range(start, n):
        experience = stream[i]
        seed = experience_seed(cfg.seed, i)
        seed_everything(seed)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        loader = DataLoader(
            experience.train, batch_size=cfg.batch_size, shuffle=True, drop_last=False,
            num_workers=cfg.num_workers, generator=torch.Generator().manual_seed(seed),
            pin_memory=device.type == "cuda",
        )
        tic = time.perf_counter()
        strategy.begin_experience(experience)
        step, curve_time = 0, 0.0
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

        if cfg.eval_every:
            curve_time += curve_point(0)
        for epoch in range(cfg.epochs):
            bar = tqdm(loader, desc=f"experience {i + 1}/{n} epoch {epoch + 1}/{cfg.epochs}",
                       disable=not show, leave=False, dynamic_ncols=True)
            for x, y in bar:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                logs = strategy.train_step(x, y, experience.task_id)
                if cfg.log_steps:
                    steps.append({"experience": i, "epoch": epoch, "step": step, **logs})
                step += 1
                if show:
                    bar.set_postfix(loss=f"{logs.get('loss', float('nan')):.3f}", refresh=False)
                if cfg.eval_every and cfg.eval_unit == "step" and step % cfg.eval_every == 0 and step < total_steps:
                    curve_time += curve_point(epoch)
            if cfg.eval_every and cfg.eval_unit == "epoch" and (epoch + 1) % cfg.eval_every == 0 \
                    and step < total_steps:
                curve_time += curve_point(epoch)
        diagnostics += [{"experience": i, **row} for row in strategy.end_experience(experience) or ()]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_time[i] = time.perf_counter() - tic - curve_time  # curve evaluations are not training
        memory[i] = _peak_memory(device)
        tic = time.perf_counter()
        for order, acc in acc_by_order.items():
            for j in range(i + 1):
                acc[i, j] = evaluate(strategy, stream[j], cfg, device, cache, order)
        eval_time[i] = time.perf_counter() - tic + curve_time
        if cfg.eval_every:  # the end of the experience: the accuracy matrix row
            curves += [{"trained_experience": i, "epoch": max(cfg.epochs - 1, 0), "step": step,
                        "global_step": global_step + step, "evaluated_experience": j,
                        "accuracy": acc_by_order[cfg.eval_order][i, j]} for j in range(i + 1)]
        global_step += step
        if run_dir is not None:
            checkpoint = {
                "experience": i, "strategy": strategy.state_dict(), "acc_by_order": acc_by_order,
                "train_time": train_time, "eval_time": eval_time, "memory": memory,
                "steps": steps, "diagnostics": diagnostics, "curves": curves, "global_step": global_step,
                "config": config,
            }
            _save_checkpoint(run_dir / CHECKPOINT, checkpoint)
            if i in keep_checkpoints:
                _save_checkpoint(run_dir / kept_checkpoint(i), checkpoint)
    results = Results(
        acc=acc_by_order[cfg.eval_order], train_time=train_time, eval_time=eval_time, peak_memory=memory,
        parameter_count=strategy.parameter_count(), stored_floats=strategy.stored_floats(),
        steps=pd.DataFrame(steps), config=config, acc_by_order=acc_by_order,
        diagnostics=pd.DataFrame(diagnostics), curves=pd.DataFrame(curves),
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
    run_dir = Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    cfg = from_dict(RunConfig, {k: v for k, v in config.items() if k in RunConfig.__dataclass_fields__})
    strategy = build_strategy(cfg, stream if stream is not None else cfg.stream.build())
    state = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=False)
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
) -> Results:
    """Build the stream and the strategy that ``cfg`` describes and :func:`run` them.

    The model is initialised after seeding every RNG with ``cfg.train.seed``; the stream's class
    order comes from ``cfg.stream.seed`` through a local generator. ``start_from`` and
    ``keep_checkpoints`` are passed to :func:`run`.
    """
    stream = cfg.stream.build()
    strategy = build_strategy(cfg, stream)
    return run(stream, strategy, cfg.train, out_dir=out_dir, resume=resume, use_cache=use_cache,
               config=to_dict(cfg), progress=progress, start_from=start_from, keep_checkpoints=keep_checkpoints)
