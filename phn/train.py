"""The runner: one strategy over one stream, with evaluation, checkpoints, resume and a results cache.

``run(stream, strategy, train_cfg, out_dir=...)`` trains experience after experience, evaluates on
every experience seen so far after each one, and returns :class:`phn.results.Results`.

Determinism: at the start of experience ``i`` every global RNG is reseeded from ``(seed, i)`` and the
data loader gets its own generator, so a run resumed after experience ``i`` continues exactly as an
uninterrupted one (strategies keep their own RNGs in their state dicts). On CPU the final accuracy
matrix of a resumed run is bit-identical to an uninterrupted run's.
"""

from __future__ import annotations

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

from phn.config import RunConfig, TrainConfig, to_dict
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
    class in index order, as Avalanche delivers test sets (the authors' pipeline); with batch-statistics
    normalisation this changes predictions, with running statistics it changes nothing.
    """
    if order == "interleaved":
        return torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed)).tolist()
    if order == "sorted":
        return sorted(range(len(labels)), key=lambda i: (int(labels[i]), i))
    raise ValueError(f"unknown evaluation order {order!r}; use 'interleaved' or 'sorted'")


def _labels(dataset: Dataset) -> list[int]:
    from phn.data import dataset_targets

    return [int(v) for v in dataset_targets(dataset)]


class LatentCache:
    """Frozen-prefix outputs of test sets, computed once per experience.

    Once a strategy's prefix is frozen, its outputs on a (deterministically ordered) test set never
    change, so later evaluations only run the part after the prefix. Predictions are identical to
    recomputing them; only time changes. At most ``max_floats`` values are kept (on the strategy's
    device); test sets beyond that are evaluated from images as usual.
    """

    def __init__(self, max_floats: int = 2**27) -> None:
        self.max_floats = max_floats
        self.floats = 0
        self.batches: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def add(self, task_id: int, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        size = sum(z.numel() for z, _ in batches)
        if self.floats + size <= self.max_floats:
            self.batches[task_id] = batches
            self.floats += size


@torch.no_grad()
def evaluate(strategy: Strategy, experience: Any, cfg: TrainConfig, device: torch.device,
             cache: LatentCache | None = None) -> float:
    """Test accuracy of ``strategy`` on ``experience`` (task id known, as in the paper).

    With a ``cache``, frozen-prefix outputs are computed once per test set and reused.
    """
    task_id = experience.task_id
    if cache is not None and task_id in cache.batches:
        pairs = ((strategy.predict_latent(z, task_id), y) for z, y in cache.batches[task_id])
        return _accuracy(pairs)
    order = evaluation_order(_labels(experience.test), cfg.eval_order, experience_seed(cfg.seed, EVAL_SEED_OFFSET + task_id))
    loader = DataLoader(
        torch.utils.data.Subset(experience.test, order),
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
        cache.add(task_id, latents)
    return accuracy


def _accuracy(pairs) -> float:
    correct = total = 0
    for logits, y in pairs:
        correct += int((logits.argmax(dim=1) == y).sum())
        total += int(y.numel())
    return correct / max(total, 1)


def _peak_memory(device: torch.device) -> float:
    if device.type == "cuda":
        return float(torch.cuda.max_memory_allocated(device))
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # KiB on Linux


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _comparable(config: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (config or {}).items() if k != "versions"}


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

    Returns:
        The accuracy matrix, per-experience times and memory, parameter counts and step logs.
    """
    config = json.loads(json.dumps({**(config or {}), "versions": versions()}, default=str))
    run_dir = Path(out_dir) if out_dir is not None else None
    if run_dir is not None and use_cache and (run_dir / "metrics.json").exists():
        cached = Results.load(run_dir)
        if _comparable(cached.config) == _comparable(config):
            return cached
    device = strategy.device
    n = len(stream)
    acc = np.full((n, n), np.nan)
    train_time, eval_time, memory = np.zeros(n), np.zeros(n), np.zeros(n)
    steps: list[dict[str, Any]] = []
    start = 0
    if resume and run_dir is not None and (run_dir / CHECKPOINT).exists():
        state = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=False)
        if _comparable(state["config"]) != _comparable(config):
            raise ValueError(f"{run_dir / CHECKPOINT} was written by a different configuration; "
                             "use another out_dir or resume=False")
        strategy.load_state_dict(state["strategy"])
        acc, train_time, eval_time, memory = state["acc"], state["train_time"], state["eval_time"], state["memory"]
        steps = state["steps"]
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
        step = 0
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
        strategy.end_experience(experience)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_time[i] = time.perf_counter() - tic
        memory[i] = _peak_memory(device)
        tic = time.perf_counter()
        for j in range(i + 1):
            acc[i, j] = evaluate(strategy, stream[j], cfg, device, cache)
        eval_time[i] = time.perf_counter() - tic
        if run_dir is not None:
            _save_checkpoint(run_dir / CHECKPOINT, {
                "experience": i, "strategy": strategy.state_dict(), "acc": acc,
                "train_time": train_time, "eval_time": eval_time, "memory": memory,
                "steps": steps, "config": config,
            })
    results = Results(
        acc=acc, train_time=train_time, eval_time=eval_time, peak_memory=memory,
        parameter_count=strategy.parameter_count(), stored_floats=strategy.stored_floats(),
        steps=pd.DataFrame(steps), config=config,
    )
    if run_dir is not None:
        results.save(run_dir)
    return results


def run_config(
    cfg: RunConfig,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    use_cache: bool = True,
    progress: bool | None = None,
) -> Results:
    """Build the stream and the strategy that ``cfg`` describes and :func:`run` them.

    The model is initialised after seeding every RNG with ``cfg.train.seed``; the stream's class
    order comes from ``cfg.stream.seed`` through a local generator.
    """
    from phn.strategies import make_strategy

    stream = cfg.stream.build()
    device = resolve_device(cfg.train.device)
    seed_everything(cfg.train.seed)
    strategy = make_strategy(
        cfg.strategy, num_tasks=len(stream), num_classes=max(len(e.classes) for e in stream),
        model_cfg=cfg.model, hyper_cfg=cfg.hyper, lr=cfg.train.lr, device=device,
        batch_size=cfg.train.batch_size, amp=cfg.train.amp, seed=cfg.train.seed,
    )
    return run(stream, strategy, cfg.train, out_dir=out_dir, resume=resume, use_cache=use_cache,
               config=to_dict(cfg), progress=progress)
