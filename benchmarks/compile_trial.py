"""``torch.compile`` on phn's generated part and on the ceiling, compile time included (issue 12, item 3).

Each configuration runs in a child process of its own (compiled code, caches and compile workers stay
out of the other measurements), where an eager and a compiled copy of the same configuration are
built alike:

* phn: ``PartialHN._logits`` (the target network's forward on the generated weights; the
  hypernetwork, regulariser and look-ahead stay eager) is replaced by ``torch.compile`` of it;
* ceiling: the trained suffix (``Ceiling.forward``) is compiled; the frozen prefix and Adam stay eager.

The compiled copy's first calls, which compile, are timed, each followed by a second call of the same
kind: a training step at batch B; one at a tail batch (the last batch of an epoch, 2500 % 64 = 4
images on Split-CIFAR100: a recompilation with dynamic shapes); and an evaluation forward at batch 256
under ``no_grad`` (another graph). Compile time = sum of (first - second). Then ``reps`` alternations
of ``steps`` eager and ``steps`` compiled training steps give the median step time of each. The
first training step of both copies starts from the same state: their losses are compared (a sanity
check of the compiled code, ``loss_difference``).

A run pays the compile time once per process and saves (eager - compiled) per step, so compilation
pays off after compile_s / (eager - compiled) steps; :data:`TYPICAL_STEPS` is one Split-CIFAR100 run at
the paper's 100 epochs (20 experiences x 40 steps x 100 epochs). Compilation is measured twice, in two
children sharing one fresh compile cache: with the cache empty (a first run on a machine) and warm
(later runs of the same configuration, which load the compiled code).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

import torch

from benchmarks.speed_cases import NUM_CLASSES, Case, Ceiling, enter_experience, make_strategy, random_batch
from phn.strategies.base import autocast

TYPICAL_STEPS = 20 * 40 * 100
EVAL_BATCH = 256
TAIL_BATCH = 4


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _pair(case: Case, device: torch.device) -> tuple[Callable, Callable, Callable]:
    """(eager training step, compiled training step, compiled evaluation call); steps take (x, y)."""
    x, y = random_batch(case.batch, case.hw, device)
    if case.method == "phn":
        eager, compiled = (make_strategy(case, device) for _ in range(2))
        task = enter_experience(eager, case.experience, x, y)
        enter_experience(compiled, case.experience, x, y)
        compiled._logits = torch.compile(compiled._logits)  # type: ignore[method-assign]
        return (lambda xb, yb: eager.train_step(xb, yb, task), lambda xb, yb: compiled.train_step(xb, yb, task),
                lambda xe: compiled.predict(xe, task))
    if case.method == "ceiling":
        eager_c, compiled_c = (Ceiling(case.model, NUM_CLASSES, device, amp=case.amp) for _ in range(2))
        compiled_c.forward = torch.compile(compiled_c.suffix)

        @torch.no_grad()
        def evaluate(xe: torch.Tensor) -> torch.Tensor:
            with autocast(device, compiled_c.amp):
                return compiled_c.forward(compiled_c.prefix(xe.to(memory_format=torch.channels_last)))

        return eager_c.train_step, compiled_c.train_step, evaluate
    raise ValueError(f"unknown compile method {case.method!r}")


def measure(case: Case, device: torch.device, steps: int, reps: int, warmup: int = 2) -> dict[str, float]:
    """Compile times and steady step times (seconds) of ``case`` (module docstring)."""
    eager, compiled, evaluate = _pair(case, device)
    x, y = random_batch(case.batch, case.hw, device)
    x_tail, y_tail = random_batch(TAIL_BATCH, case.hw, device, seed=1)
    x_eval, _ = random_batch(EVAL_BATCH, case.hw, device, seed=2)
    losses = [_loss(eager(x, y))]  # the first step of both copies starts from the same state
    out: dict[str, float] = {}
    for name, call in (("train", lambda: losses.append(_loss(compiled(x, y)))),
                       ("tail", lambda: compiled(x_tail, y_tail)), ("eval", lambda: evaluate(x_eval))):
        first, second = _timed(call, device), _timed(call, device)
        out[f"compile_{name}_s"] = max(first - second, 0.0)
    out["compile_s"] = out["compile_train_s"] + out["compile_tail_s"] + out["compile_eval_s"]
    out["loss_difference"] = abs(losses[0] - losses[1])
    for _ in range(warmup - 1):
        eager(x, y)
        compiled(x, y)
    eager_s, compiled_s = [], []
    for _ in range(reps):
        eager_s.append(_timed(lambda: [eager(x, y) for _ in range(steps)], device) / steps)
        compiled_s.append(_timed(lambda: [compiled(x, y) for _ in range(steps)], device) / steps)
    out["eager_s"], out["compiled_s"] = statistics.median(eager_s), statistics.median(compiled_s)
    return out


def _loss(result: object) -> float:
    return float(result["loss"] if isinstance(result, dict) else result)  # type: ignore[index,arg-type]


def combine(cold: dict[str, float], warm: dict[str, float]) -> dict[str, float]:
    """One result from two children sharing a compile cache: the first started with an empty cache
    (``compile_s``), the second found the first's compiled code (``compile_warm_s``); step times are
    the mean of both."""
    out = {k: v for k, v in cold.items() if k.startswith("compile_")}
    out |= {f"{k[:-2]}_warm_s": v for k, v in warm.items() if k.startswith("compile_")}
    out |= {k: (cold[k] + warm[k]) / 2 for k in ("eager_s", "compiled_s")}
    out["loss_difference"] = max(cold["loss_difference"], warm["loss_difference"])
    return out


def summary(result: dict[str, float], typical_steps: int = TYPICAL_STEPS) -> str:
    """One line: compile times, break-even and a typical run's total with and without compilation."""
    saving = result["eager_s"] - result["compiled_s"]
    cold, warm = result["compile_s"], result.get("compile_warm_s", math.nan)
    even = (f"break-even after {cold / saving:,.0f} steps (cold) / {warm / saving:,.0f} (warm)" if saving > 0
            else "no saving per step")
    eager_h = typical_steps * result["eager_s"] / 3600
    compiled_h = [(c + typical_steps * result["compiled_s"]) / 3600 for c in (cold, warm)]
    return (f"compile {cold:.1f} s with an empty cache (train {result['compile_train_s']:.1f}, tail "
            f"{result['compile_tail_s']:.1f}, eval {result['compile_eval_s']:.1f}), {warm:.1f} s with a warm one; "
            f"{even}; {typical_steps:,} steps: eager {eager_h:.2f} h, compiled {compiled_h[0]:.2f} h (cold) / "
            f"{compiled_h[1]:.2f} h (warm); first-step loss eager - compiled: {result['loss_difference']:.1e}")


__all__ = ["EVAL_BATCH", "TAIL_BATCH", "TYPICAL_STEPS", "combine", "measure", "summary"]
