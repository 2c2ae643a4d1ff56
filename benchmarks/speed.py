"""Side-by-side speed of phn, the authors' per-sample path and the plain-network ceiling (issue 12).

Everything is measured in ONE run on one machine, with repetitions interleaved round-robin across
configurations (repetition 1 of every configuration, then repetition 2, ...) so that machine noise
hits all of them alike. Sections (configurations and steps: :mod:`benchmarks.speed_cases`):

* ``train``: img/s of one training step of HN-k (k = 4, 2, 0) at experience 2 and 20 (1 and 19
  earlier tasks in the regulariser), batch 64 and 128, for phn, the authors' per-sample path
  (:mod:`benchmarks.authors_path`, checked equal to phn in float64 by ``tests/benchmarks``) under both
  glibc allocator settings, and the ceiling (the same layers behind the same frozen prefix trained
  directly with Adam); ratios phn / per-sample and phn / ceiling;
* ``lookahead``: step time with look-ahead none / first / second;
* ``regulariser``: R and its gradient for 1, 5, 10, 20 earlier tasks: phn's batched call, a Python
  loop over tasks, and the authors' loop with snapshot regeneration;
* ``data``: images per second delivered by the per-sample DataLoader and by the batched
  ``phn.data.batched.DeviceBatches`` (a "not available" row where that module is missing);
* ``compile`` (only with ``--compile``): :mod:`benchmarks.compile_trial`.

Memory: the peak of each training configuration is measured in a child process of its own, since a
process's peak never decreases (on CPU the peak resident set, ``VmHWM``: see :func:`peak_mib`; on CUDA
``torch.cuda.max_memory_allocated``). ``peak_mib`` is the whole child (interpreter and torch included on CPU), ``setup_mib`` the same
measure once the configuration is built, before its first step. The per-sample path with
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736`` ("tuned malloc") runs in child processes
started with that environment (glibc reads it at start-up), inside the round robin; those children's
own peaks are its memory.

Output in ``--out`` (default ``runs/speed``): ``speed.csv`` (one row per configuration: ``config``, its
fields, threads, device, img/s (median, min, max over repetitions) or ms, peak MiB and the ratios),
``speed_reps.csv`` (every timed repetition), ``speed.md`` (the printed tables), ``speed.png`` and
``speed.svg``, ``speed.json`` (machine, versions, command, duration).

Example (the full benchmark, on a quiet machine; about 35 min on the 2-core CPU, 15 more with --compile):
    .venv/bin/python -m benchmarks.speed --threads 2 --out runs/speed
    .venv/bin/python -m benchmarks.speed --compile --out runs/speed
Smoke run (seconds):
    .venv/bin/python -m benchmarks.speed --quick --out /tmp/speed
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from typing import TYPE_CHECKING

import torch

from benchmarks import compile_trial
from benchmarks.speed_cases import DATA_CLASSES, TUNED_MALLOC, Case, Runner, build, device_batches_class

if TYPE_CHECKING:  # pandas and matplotlib (benchmarks.speed_report) are imported by the parent only
    import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("train", "lookahead", "regulariser", "data", "compile")
QUICK = {"models": [2], "experiences": [2], "batches": [4], "reg_tasks": [1, 2], "reps": 2, "steps": 1, "warmup": 1,
         "hw": 16, "data_per_class": 8}
FULL = {"models": [4, 2, 0], "experiences": [2, 20], "batches": [64, 128], "reg_tasks": [1, 5, 10, 20], "reps": 3,
        "steps": 5, "warmup": 2, "hw": 32, "data_per_class": 500}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(runner: Runner, steps: int, device: torch.device) -> float:
    """Seconds per ``runner.step()``, averaged over ``steps`` calls (synchronised on CUDA)."""
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        runner.step()
    sync(device)
    return (time.perf_counter() - start) / steps


def peak_mib(device: torch.device) -> float:
    """This process's peak memory so far (MiB): max allocated on CUDA; on CPU the peak resident set.

    On Linux the peak is read from ``VmHWM`` in ``/proc/self/status``: ``ru_maxrss`` of a child
    process started by ``subprocess`` (vfork + exec) also holds the PARENT's peak at the time of the
    exec, which would hide every configuration under the parent's footprint.
    """
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, bytes on macOS


# ---- child processes --------------------------------------------------------------------------------
def child_main(args: argparse.Namespace) -> None:
    """Build one configuration, time it and print ``RESULT {json}`` (see :func:`run_child`)."""
    device = torch.device(args.device)
    case = Case.from_json(args.child)
    if case.section == "compile":
        result = compile_trial.measure(case, device, args.steps, args.reps, args.warmup)
    else:
        runner = build(case, device)
        setup = peak_mib(device)
        for _ in range(args.warmup):
            runner.step()
        seconds = time_steps(runner, args.steps, device)
        result = {"seconds": seconds, "images": runner.images, "peak_mib": peak_mib(device), "setup_mib": setup}
    print("RESULT " + json.dumps(result), flush=True)


def run_child(case: Case, args: argparse.Namespace, steps: int, warmup: int, reps: int = 1,
              extra_env: dict[str, str] | None = None) -> dict:
    """Run ``case`` in a fresh interpreter; the tuned allocator's variables only where ``case`` asks."""
    env = {k: v for k, v in os.environ.items() if k not in TUNED_MALLOC} | (extra_env or {})
    if case.allocator == "tuned":
        env |= TUNED_MALLOC
    cmd = [sys.executable, "-m", "benchmarks.speed", "--child", case.to_json(), "--device", args.device,
           "--threads", str(args.threads), "--steps", str(steps), "--warmup", str(warmup), "--reps", str(reps)]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    results = [line[len("RESULT "):] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not results:
        raise RuntimeError(f"child process for {case.label} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(results[-1])


# ---- plan ---------------------------------------------------------------------------------------------
def plan(args: argparse.Namespace) -> list[Case]:
    """Every configuration, in the order of one round."""
    common = {"hw": args.hw}
    cases: list[Case] = []
    if "train" in args.sections:
        for k in args.models:
            for exp in args.experiences:
                for b in args.batches:
                    base = {"model": k, "experience": exp, "batch": b} | common
                    cases += [Case("train", "phn", amp=args.amp, **base), Case("train", "per-sample", **base)]
                    if not args.device.startswith("cuda"):  # glibc's settings matter on CPU, not to CUDA memory
                        cases.append(Case("train", "per-sample", allocator="tuned", **base))
                    cases.append(Case("train", "ceiling", amp=args.amp, **base))
    if "lookahead" in args.sections:
        for k in args.models:
            cases += [Case("lookahead", "phn", k, args.experiences[0], args.batches[0], order, amp=args.amp, **common)
                      for order in ("none", "first", "second")]
    if "regulariser" in args.sections:
        for k in args.models:
            cases += [Case("regulariser", method, k, option=str(n), **common)
                      for n in args.reg_tasks for method in ("batched", "loop", "snapshot-loop")]
    if "data" in args.sections:
        size = f"{DATA_CLASSES * args.data_per_class} images"
        cases += [Case("data", method, batch=b, option=size, data_per_class=args.data_per_class)
                  for b in args.batches for method in ("dataloader", "device-batches", "device-batches+setup")]
    return cases


def compile_plan(args: argparse.Namespace) -> list[Case]:
    return [Case("compile", method, k, args.experiences[0], args.batches[0], hw=args.hw, amp=args.amp)
            for k in args.models for method in ("phn", "ceiling")]


# ---- the run ------------------------------------------------------------------------------------------
def measure(args: argparse.Namespace, device: torch.device) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per configuration, one row per timed repetition)."""
    import pandas as pd

    from benchmarks.speed_report import aggregate, case_fields

    cases = plan(args)
    notes = {}
    if device_batches_class() is None:
        for case in cases:
            if case.method.startswith("device-batches"):
                notes[case.label] = "not available: phn.data.batched.DeviceBatches not found"
    timed = [c for c in cases if c.label not in notes]
    runners: dict[Case, Runner] = {}
    memory: dict[str, dict[str, float]] = {}
    reps_rows = []
    tic = time.perf_counter()
    for rep in range(args.reps):
        for case in timed:
            if case.allocator == "tuned":
                res = run_child(case, args, args.steps, args.warmup)
                seconds, images = res["seconds"], res["images"]
                old = memory.get(case.label, {})
                memory[case.label] = {k: max(res[k], old.get(k, 0.0)) for k in ("peak_mib", "setup_mib")}
            else:
                runner = runners.get(case)
                if runner is None:
                    runner = runners[case] = build(case, device)
                    for _ in range(args.warmup):
                        runner.step()
                else:
                    runner.step()  # re-warm after the other configurations ran
                seconds, images = time_steps(runner, args.steps, device), runner.images
            reps_rows.append(case_fields(case) | {"label": case.label, "rep": rep + 1, "seconds": seconds,
                                                  "images": images})
            rate = f"{images / seconds:,.0f} img/s" if images else f"{1e3 * seconds:,.1f} ms"
            print(f"[rep {rep + 1}/{args.reps} {time.perf_counter() - tic:6.0f} s] {case.label}: {rate}", flush=True)
    runners.clear()
    if args.memory:
        for case in timed:
            if case.section not in ("train", "lookahead") or case.allocator != "default" or case.label in memory:
                continue
            same = dataclasses.replace(case, section="train", option="")  # look-ahead "first" is the train case
            if case.option == "first" and same.label in memory:
                memory[case.label] = memory[same.label]
                continue
            res = run_child(case, args, steps=2, warmup=1)
            memory[case.label] = {"peak_mib": res["peak_mib"], "setup_mib": res["setup_mib"]}
            print(f"[memory {time.perf_counter() - tic:6.0f} s] {case.label}: {res['peak_mib']:,.0f} MiB", flush=True)
    reps_df = pd.DataFrame(reps_rows)
    table = aggregate(reps_df, memory, notes, [c for c in cases if c.label in notes], args.threads, args.device)
    if "compile" in args.sections:
        table = pd.concat([table, measure_compile(args)], ignore_index=True)
    return table, reps_df


def measure_compile(args: argparse.Namespace) -> pd.DataFrame:
    from benchmarks.speed_report import compile_rows

    results, cases, summaries = {}, {}, {}
    for case in compile_plan(args):
        with tempfile.TemporaryDirectory(prefix="phn-compile-cache-") as cache:
            # a fresh compile cache (a first run on a machine), then the same cache again (later runs)
            env = {"TORCHINDUCTOR_CACHE_DIR": cache, "TRITON_CACHE_DIR": str(Path(cache) / "triton")}
            cold, warm = (run_child(case, args, args.steps, args.warmup, args.reps, env) for _ in range(2))
        res = compile_trial.combine(cold, warm)
        results[case.label], cases[case.label] = res, case
        summaries[case.label] = compile_trial.summary(res)
        print(f"[compile] {case.label}: eager {1e3 * res['eager_s']:.1f} ms, "
              f"compiled {1e3 * res['compiled_s']:.1f} ms; "
              f"{summaries[case.label]}", flush=True)
    return compile_rows(results, cases, summaries, args.threads, args.device)


def machine(args: argparse.Namespace, argv: list[str], seconds: float) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "phn", "benchmarks"], cwd=ROOT, capture_output=True,
                           text=True, check=False).stdout.strip()
    return {
        "command": " ".join(["python", "-m", "benchmarks.speed", *argv]),
        "date": datetime.datetime.now().isoformat(timespec="seconds"), "seconds": round(seconds, 1),
        "cpu": cpu, "cores": os.cpu_count(), "threads": args.threads, "device": args.device,
        "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
        "torch": torch.__version__, "python": platform.python_version(), "commit": commit.stdout.strip(),
        "uncommitted_changes": bool(dirty),  # phn/ or benchmarks/ differ from the commit
        "parent_malloc_env": {k: os.environ[k] for k in TUNED_MALLOC if k in os.environ},
        "reps": args.reps, "steps": args.steps, "warmup": args.warmup, "quick": args.quick, "amp": args.amp,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads, here and in every child (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:i]")
    parser.add_argument("--amp", action="store_true",
                        help="bf16 autocast for phn and the ceiling on CUDA (phn's runner default there; the "
                             "per-sample path stays in float32 as the authors' code)")
    parser.add_argument("--out", default="runs/speed", help="output folder (default runs/speed)")
    parser.add_argument("--quick", action="store_true", help=f"tiny sizes for tests and CI (seconds): {QUICK}")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=None,
                        help="default: all but compile (plus compile with --compile)")
    parser.add_argument("--compile", action="store_true", help="add the torch.compile trial (minutes of compilation)")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                        help="peak memory of every training configuration, each in a child process (default on)")
    for name, kind in (("models", int), ("experiences", int), ("batches", int), ("reg_tasks", int)):
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, nargs="+", default=None,
                            help=f"default {FULL[name]} ({QUICK[name]} with --quick)")
    for name in ("reps", "steps", "warmup", "hw", "data_per_class"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None,
                            help=f"default {FULL[name]} ({QUICK[name]} with --quick)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.sections is None:
        args.sections = [s for s in SECTIONS if s != "compile"] + (["compile"] if args.compile else [])
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.child:
        child_main(args)
        return
    from benchmarks.speed_report import figure, markdown

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("speed: --device cuda but CUDA is not available")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    inherited = [k for k in TUNED_MALLOC if k in os.environ]
    if inherited:
        print(f"speed: warning: {', '.join(inherited)} set in this process: its 'default' allocator rows are not "
              "glibc's default (children get the default environment)", file=sys.stderr)
    tic = time.perf_counter()
    table, reps = measure(args, device)
    meta = machine(args, argv, time.perf_counter() - tic)
    csv = table.rename(columns={"label": "config"})
    csv[["config"] + [c for c in csv.columns if c != "config"]].to_csv(out / "speed.csv", index=False)
    reps.to_csv(out / "speed_reps.csv", index=False)
    report = (f"# Speed: {meta['cpu']}, {args.threads} threads, device {args.device}, torch {meta['torch']}, "
              f"{args.reps} repetitions x {args.steps} steps ({meta['seconds']:.0f} s"
              f"{', QUICK sizes' if args.quick else ''})"
              f"\n\n{markdown(table)}\n")
    (out / "speed.md").write_text(report)
    (out / "speed.json").write_text(json.dumps(meta, indent=2) + "\n")
    fig = figure(table)
    for ext in ("png", "svg"):
        fig.savefig(out / f"speed.{ext}", dpi=120)
    print("\n" + report)
    print(f"wrote {out}/speed.csv, speed_reps.csv, speed.md, speed.png, speed.svg, speed.json")


if __name__ == "__main__":
    main()
