"""Sweeps (issue 13): grids, aggregation checked by hand, concurrency flags, retries, resume; in process
and on local Ray (Ray is installed by `make test`, so under CI these tests run, never skip)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phn.cli import main
from phn.config import RunConfig, from_dict
from phn.sweep import (SweepError, SweepOptions, TrialRecord, annotate_concurrency, grid, load_sweep, paper_table,
                       run_sweep, summarize, trial_id)

ROOT = Path(__file__).parents[1]
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(),
                                   reason="needs apt-get install dataset-fashion-mnist")
TINY = {"stream": {"name": "split-fashionmnist", "max_per_class": 20, "class_order": list(range(10))},
        "train": {"epochs": 1, "batch_size": 32, "device": "cpu"}}
TINY_ARGS = ["--class-order", "0,1,2,3,4,5,6,7,8,9", "--max-per-class", "20", "--epochs", "1", "--batch-size", "32",
             "--device", "cpu"]


def _ray():
    """Ray, which `make test` installs: missing under CI is a failure, elsewhere a skip."""
    if os.environ.get("CI"):
        import ray  # noqa: F401 - fails the test when the extra is not installed
        return
    pytest.importorskip("ray", reason="the sweep extra (pip install -r requirements-sweep.txt)")


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch, tmp_path):
    monkeypatch.delenv("PHN_DATA", raising=False)
    monkeypatch.setenv("PHN_RUNS", str(tmp_path / "cache"))


def _base(**train) -> RunConfig:
    return from_dict(RunConfig, {**TINY, "train": {**TINY["train"], **train}})


# ----------------------------------------------------------------------------- the grid
def test_grid_is_the_product_of_the_axes_first_axis_slowest():
    configs = grid(_base(), {"strategy": ["Naive", "HN-4", "HN-F"], "seed": [0, 1]})
    assert [(c.label, c.train.seed) for c in configs] == [
        ("Naive", 0), ("Naive", 1), ("HN-4", 0), ("HN-4", 1), ("HN-F", 0), ("HN-F", 1)]
    assert all(c.stream.seed == c.train.seed for c in configs)  # seed: model and class order, as `phn run --seed`
    assert configs[4].model.freeze_depth == 0 and configs[4].strategy.name == "hn"
    assert len({trial_id(c) for c in configs}) == 6


def test_grid_fields_aliases_and_later_axes_override():
    configs = grid(_base(), {"strategy": ["HN-4"], "freeze_depth": [2], "hyper.beta": [0.1, 1.0], "lr": [1e-2]})
    assert [(c.label, c.hyper.beta, c.train.lr) for c in configs] == [("HN-2", 0.1, 1e-2), ("HN-2", 1.0, 1e-2)]
    lr = grid(_base(), {"strategy": ["LR-3"]})[0]
    assert (lr.strategy.name, lr.model.freeze_depth, lr.strategy.buffer_size) == ("lr", 3, 200)
    assert grid(_base(), {"strategy": ["ewc"]})[0].label == "EWC"
    assert len(grid(_base(), {"seed": [0, 0, 1]})) == 2  # the same configuration is one trial


@pytest.mark.parametrize("axes, message", [
    ({"train.nonsense": [1]}, "unknown sweep axis 'train.nonsense'"),
    ({"colour": [1]}, "unknown sweep axis 'colour'"),
    ({"seed": []}, "non-empty list"),
    ({"strategy": ["HN-9"]}, "unknown strategy label 'HN-9'"),
    ({"freeze_depth": [7]}, "freeze_depth"),
])
def test_grid_errors_name_the_problem(axes, message):
    with pytest.raises(ValueError, match=message):
        grid(_base(), axes)


# ----------------------------------------------------------------------------- aggregation by hand
def test_summarize_against_hand_computed_numbers():
    trials = pd.DataFrame([
        {"strategy": "Naive", "seed": 0, "status": "done", "aca": 50.0, "learning_accuracy": 90.0,
         "forgetting": 40.0, "train_time_s": 10.0, "beside": 0, "shared_cores": False},
        {"strategy": "Naive", "seed": 1, "status": "done", "aca": 70.0, "learning_accuracy": 94.0,
         "forgetting": 20.0, "train_time_s": 14.0, "beside": 1, "shared_cores": True},
        {"strategy": "HN-4", "seed": 0, "status": "done", "aca": 80.0, "learning_accuracy": 85.0,
         "forgetting": 5.0, "train_time_s": 20.0, "beside": None, "shared_cores": None},
        {"strategy": "HN-4", "seed": 1, "status": "failed", "aca": np.nan, "learning_accuracy": np.nan,
         "forgetting": np.nan, "train_time_s": np.nan, "beside": None, "shared_cores": None},
    ])
    summary = summarize(trials).set_index("strategy")
    # Naive: mean of 50 and 70 = 60; sample std = sqrt(((50-60)^2 + (70-60)^2) / 1) = sqrt(200) = 14.1421...
    assert summary.loc["Naive", "aca"] == 60.0
    assert summary.loc["Naive", "aca_std"] == pytest.approx(14.142135623730951)
    assert summary.loc["Naive", "learning_accuracy"] == 92.0
    assert summary.loc["Naive", "learning_accuracy_std"] == pytest.approx(2.8284271247461903)  # sqrt(8)
    assert summary.loc["Naive", "forgetting"] == 30.0 and summary.loc["Naive", "train_time_s"] == 12.0
    assert summary.loc["Naive", "train_time_s_std"] == pytest.approx(2.8284271247461903)
    assert summary.loc["Naive", "seeds"] == 2
    assert (summary.loc["Naive", "time_beside"], summary.loc["Naive", "time_shared_cores"]) == (1, 1)
    # HN-4: the failed seed is left out; one seed has std 0
    assert (summary.loc["HN-4", "aca"], summary.loc["HN-4", "aca_std"], summary.loc["HN-4", "seeds"]) == (80.0, 0.0, 1)
    assert summary.loc["HN-4", "time_unknown"] == 1
    assert list(summary.index) == ["Naive", "HN-4"]  # order of first appearance
    table = paper_table(summary.reset_index()).set_index("strategy")
    assert table.loc["Naive", "ACA (%)"] == "60.0 ± 14.1"
    assert table.loc["Naive", "train time (s)"] == "12.0 ± 2.8 (1 of 2 on shared cores)"
    assert table.loc["HN-4", "train time (s)"] == "20.0 ± 0.0 (1 of 1 timed before this sweep)"


def test_concurrency_flags():
    def record(tid, host, start, end, threads, cores=2, cached=False):
        return TrialRecord(tid, status="done", host=host, start=start, end=end, threads=threads, cores=cores,
                           cached=cached)

    alone = record("a", "h1", 0, 10, 1)
    overlapping = [record("b", "h1", 20, 30, 1), record("c", "h1", 25, 35, 1)]
    oversubscribed = [record("d", "h1", 40, 50, 2), record("e", "h1", 45, 55, 1)]
    other_host = record("f", "h2", 0, 100, 2)
    cached = record("g", "h1", 0, 100, 1, cached=True)
    untimed = TrialRecord("h", status="done")
    records = [alone, *overlapping, *oversubscribed, other_host, cached, untimed]
    annotate_concurrency(records)
    assert (alone.beside, alone.shared_cores) == (0, False)
    assert [(r.beside, r.shared_cores) for r in overlapping] == [(1, False), (1, False)]  # 1 + 1 threads on 2 cores
    assert [(r.beside, r.shared_cores) for r in oversubscribed] == [(1, True), (1, True)]  # 2 + 1 threads
    assert (other_host.beside, other_host.shared_cores) == (0, False)
    assert (cached.beside, untimed.beside) == (None, None)  # not measured in this sweep: unknown


# ----------------------------------------------------------------------------- in process
@needs_fashion
def test_inprocess_sweep_retries_a_failing_trial_once_and_finishes_the_others(tmp_path, caplog):
    configs = grid(_base(), {"strategy": ["Naive", "HN-4"], "seed": [0, 1]})
    diverging = grid(_base(lr=1e30), {"strategy": ["Naive"]})[0]  # NaN loss: DivergenceError, every attempt
    result = run_sweep([*configs, diverging], tmp_path / "s", SweepOptions(progress=False))
    bad = trial_id(diverging)
    assert set(result.failed) == {bad} and "DivergenceError" in result.failed[bad]
    record = TrialRecord.load(tmp_path / "s" / "trials" / f"{bad}.json")
    assert (record.status, record.attempts, len(record.errors)) == ("failed", 2, 2)
    assert "retrying" in caplog.text and "giving up" in caplog.text
    assert sorted(result.results) == sorted(trial_id(c) for c in configs)
    # the table is the mean and sample std of the trials' own results
    for label in ("Naive", "HN-4"):
        acas = [result.results[trial_id(c)].summary()["aca"] for c in configs if c.label == label]
        row = result.summary.set_index("strategy").loc[label]
        assert row.aca == pytest.approx(np.mean(acas)) and row.aca_std == pytest.approx(np.std(acas, ddof=1))
        assert (row.seeds, row.time_beside, row.time_shared_cores) == (2, 0, 0)
    assert (tmp_path / "s" / "summary.csv").is_file() and (tmp_path / "s" / "trials.csv").is_file()
    assert load_sweep(tmp_path / "s").summary.equals(result.summary)

    # an unfinished sweep (the failed trial) is refused without resume; another grid always
    with pytest.raises(SweepError, match=r"unfinished sweep \(4 of 5 trials done\).*--resume"):
        run_sweep([*configs, diverging], tmp_path / "s", SweepOptions(progress=False))
    with pytest.raises(SweepError, match="holds another sweep"):
        run_sweep(configs, tmp_path / "s", SweepOptions(progress=False), resume=True)
    # resuming runs only what is missing: the finished trials are not started again
    before = {tid: TrialRecord.load(tmp_path / "s" / "trials" / f"{tid}.json") for tid in result.results}
    again = run_sweep([*configs, diverging], tmp_path / "s", SweepOptions(progress=False, retries=0), resume=True)
    for tid, old in before.items():
        new = TrialRecord.load(tmp_path / "s" / "trials" / f"{tid}.json")
        assert (new.attempts, new.start, new.end) == (old.attempts, old.start, old.end)
    assert TrialRecord.load(tmp_path / "s" / "trials" / f"{bad}.json").attempts == 3
    assert again.summary.equals(result.summary)


@needs_fashion
def test_cli_sweep_in_process(tmp_path, capsys):
    code = main(["sweep", *TINY_ARGS, "--grid", "strategy=Naive,HN-4", "--grid", "seed=0", "--executor", "inprocess",
                 "--out", str(tmp_path / "s"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ACA (%)" in out and "HN-4" in out and "Naive" in out and "2 of 2 trials done" in out
    assert len(pd.read_csv(tmp_path / "s" / "trials.csv")) == 2


@pytest.mark.parametrize("argv, message", [
    (["--grid", "strategy"], "--grid expects AXIS=V1,V2"),
    (["--grid", "seed=0", "--grid", "seed=1"], "--grid seed is given twice"),
    ([], "needs at least one --grid"),
    (["--grid", "colour=red"], "unknown sweep axis 'colour'"),
])
def test_cli_sweep_errors_are_one_line(tmp_path, capsys, argv, message):
    assert main(["sweep", *TINY_ARGS, "--out", str(tmp_path / "s"), "--executor", "inprocess", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


# ----------------------------------------------------------------------------- on Ray
@needs_fashion
def test_ray_sweep_runs_trials_in_parallel_and_retries_a_failure(tmp_path):
    _ray()
    configs = grid(_base(), {"strategy": ["Naive", "HN-4"], "seed": [0, 1]})
    diverging = grid(_base(lr=1e30), {"strategy": ["Naive"]})[0]
    options = SweepOptions(executor="ray", max_concurrent=2, cpus_per_trial=1, progress=False)
    result = run_sweep([*configs, diverging], tmp_path / "s", options)
    assert set(result.failed) == {trial_id(diverging)} and "DivergenceError" in result.failed[trial_id(diverging)]
    assert TrialRecord.load(tmp_path / "s" / "trials" / f"{trial_id(diverging)}.json").attempts == 2
    assert sorted(result.results) == sorted(trial_id(c) for c in configs)
    records = [TrialRecord.load(tmp_path / "s" / "trials" / f"{trial_id(c)}.json") for c in configs]
    assert all(r.node and r.pid != os.getpid() and r.threads == 1 for r in records)  # Ray workers, 1 thread each
    assert any(r.beside for r in records)  # two at a time: the records say so
    summary = result.summary.set_index("strategy")
    assert list(summary.seeds) == [2, 2]
    assert summary.time_beside.sum() == sum(1 for r in records if r.beside)


def _records(sweep: Path) -> dict[str, TrialRecord]:
    """The trial records written so far (a record being replaced at this moment is left out)."""
    records = {p.stem: TrialRecord.load(p) for p in sorted((sweep / "trials").glob("*.json"))}
    return {tid: r for tid, r in records.items() if r is not None}


@needs_fashion
def test_killed_ray_sweep_resumes_only_what_is_missing(tmp_path):
    _ray()
    sweep = tmp_path / "s"
    argv = [sys.executable, "-m", "phn", "sweep", *TINY_ARGS, "--max-per-class", "60", "--grid", "strategy=Naive,HN-4",
            "--grid", "seed=0,1", "--max-concurrent", "1", "--out", str(sweep), "--no-progress"]
    env = {**os.environ, "PHN_RUNS": str(tmp_path / "cache")}
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + 300
    while True:  # kill while one trial is finished and the next one trains
        statuses = [r.status for r in _records(sweep).values()]
        if "done" in statuses and "running" in statuses:
            break
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, f"no trial finished in 300 s: {statuses}"
        time.sleep(0.1)
    time.sleep(1.0)  # into the running trial's training
    os.killpg(process.pid, signal.SIGKILL)  # the driver and everything it started (Ray included)
    process.wait()
    killed = _records(sweep)
    done = {tid for tid, r in killed.items() if r.status == "done"}
    assert 1 <= len(done) < 4
    assert any(r.status == "running" for r in killed.values())  # the one the kill interrupted

    resumed = subprocess.run([*argv, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "4 of 4 trials done" in resumed.stdout
    after = _records(sweep)
    assert all(r.status == "done" for r in after.values())
    for tid in done:  # finished before the kill: not run again
        assert (after[tid].attempts, after[tid].start, after[tid].end) == (
            killed[tid].attempts, killed[tid].start, killed[tid].end)
    assert all(after[tid].attempts >= 1 for tid in set(after) - done)
    refused = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 0 and "4 of 4 trials done" in refused.stdout  # a finished sweep just prints
    table = load_sweep(sweep).trials
    assert (table.status == "done").all() and len(json.loads((sweep / "sweep.json").read_text())["trials"]) == 4


@needs_fashion
def test_run_benchmarks_through_a_sweep_carries_the_timing_flags_into_table_2(tmp_path):
    from phn.experiments.benchmarks import BenchmarkConfig, benchmark_summary, run_benchmarks

    cfg = BenchmarkConfig(strategies=("Naive",), seeds=(0,), max_per_class=10, epochs=1, curve_depth=4)
    runs = run_benchmarks(cfg, root=tmp_path / "cache", progress=False, sweep_dir=tmp_path / "s")
    assert list(runs.runs.beside) == [0] and list(runs.runs.shared_cores) == [False]
    assert (tmp_path / "s" / "sweep.json").is_file()  # recorded as a sweep, in process
    summary = benchmark_summary(runs.runs)
    assert (summary.time_beside.iloc[0], summary.seeds.iloc[0]) == (0, 1)
