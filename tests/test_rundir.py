"""Run-directory integrity (issue 11): a run never reports numbers it did not produce.

Completion marker, one configuration per directory, lock, divergence, code and data provenance in
the cache key, mid-experience resume and safe checkpoint loading, on the tiny in-memory stream.
"""

import json
import logging
import os
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from phn import provenance, rundir
from phn.config import HyperConfig, ModelConfig, StrategyConfig, TrainConfig
from phn.results import Results
from phn.rundir import CorruptRunError, RunDirectoryError, RunLockedError
from phn.strategies import make_strategy
from phn.train import CHECKPOINT, DivergenceError, load_checkpoint, run
from tiny import tiny_stream

CFG = TrainConfig(epochs=2, batch_size=16, eval_batch_size=8, seed=3)


def _strategy(name="naive", k=2, seed=3, lr=1e-3):
    torch.manual_seed(seed)
    return make_strategy(StrategyConfig(name=name, buffer_size=6), num_tasks=3, num_classes=2,
                         model_cfg=ModelConfig(freeze_depth=k), hyper_cfg=HyperConfig(reg_tasks=1),
                         lr=lr, batch_size=16, seed=seed)


class Killed(Exception):
    pass


def _dying(strategy, task_id_to_die, calls_before):
    """Make ``strategy.train_step`` raise Killed at call ``calls_before + 1`` of task ``task_id_to_die``."""
    original, calls = strategy.train_step, []

    def step(x, y, task_id):
        calls.append(task_id)
        if task_id == task_id_to_die and calls.count(task_id) == calls_before + 1:
            raise Killed
        return original(x, y, task_id)

    strategy.train_step = step
    return strategy


# ----------------------------------------------------------------------------- item 1: cache integrity
def test_interrupted_rerun_never_returns_the_earlier_configurations_results(tmp_path):
    """Finish epochs=2; rerun epochs=1 into the same directory (allowed with overwrite), kill it after
    its first checkpoint; the next epochs=1 run (with or without resume) trains: epochs-1 numbers."""
    stream = tiny_stream(3)
    one = TrainConfig(epochs=1, batch_size=16, eval_batch_size=8, seed=3)
    reference = run(stream, _strategy(), one, config={"epochs": 1})
    run(stream, _strategy(), CFG, out_dir=tmp_path, config={"epochs": 2})
    with pytest.raises(RunDirectoryError, match="epochs: 2 -> 1"):
        run(stream, _strategy(), one, out_dir=tmp_path, config={"epochs": 1})
    with pytest.raises(Killed):
        run(stream, _dying(_strategy(), 1, 0), one, out_dir=tmp_path, config={"epochs": 1}, overwrite=True)
    assert not (tmp_path / rundir.MARKER).exists() and not (tmp_path / "metrics.json").exists()
    with pytest.raises(CorruptRunError, match="holds no finished run"):
        Results.load(tmp_path)
    for resume in (True, False):
        again = run(stream, _strategy(), one, out_dir=tmp_path, config={"epochs": 1}, resume=resume)
        assert not again.cached
        np.testing.assert_array_equal(again.acc, reference.acc)
        (tmp_path / rundir.MARKER).unlink()  # the next iteration must not be a cache hit either


def test_a_result_file_altered_after_the_run_is_not_reused(tmp_path, caplog):
    stream = tiny_stream(2)
    run(stream, _strategy(), CFG, out_dir=tmp_path, config={"a": 1})
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    metrics["summary"]["aca"] = 99.0
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(CorruptRunError, match="does not match"):
        Results.load(tmp_path)
    with caplog.at_level(logging.WARNING, logger="phn"):
        again = run(stream, _strategy(), CFG, out_dir=tmp_path, config={"a": 1})
    assert "its metrics.json does not match its complete.json" in caplog.text
    assert not again.cached and Results.load(tmp_path).summary()["aca"] != 99.0


def test_corrupt_metrics_json_is_named_in_the_error(tmp_path):
    stream = tiny_stream(2)
    run(stream, _strategy(), CFG, out_dir=tmp_path, config={"a": 1})
    (tmp_path / "metrics.json").write_text('{"acc": [[0.5')
    with pytest.raises(CorruptRunError, match="metrics.json"):
        Results.load(tmp_path)
    with pytest.raises(CorruptRunError, match=r"metrics.json is unreadable"):
        rundir.read_json(tmp_path / "metrics.json")


# ----------------------------------------------------------------------------- item 2: divergence
def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    stream = tiny_stream(3)
    strategy = _strategy()
    original = strategy.train_step
    calls = []

    def nan_in_experience_3(x, y, task_id):
        calls.append(task_id)
        logs = original(x, y, task_id)
        return {**logs, "loss": float("nan")} if task_id == 2 and calls.count(2) == 3 else logs

    strategy.train_step = nan_in_experience_3
    with pytest.raises(DivergenceError, match=r"loss nan at experience 3/3, epoch 2, step 3"):
        run(stream, strategy, CFG, out_dir=tmp_path, config={"a": 1})
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / rundir.MARKER).exists()
    state = load_checkpoint(tmp_path / CHECKPOINT)  # after experience 2's first epoch, readable
    assert state["partial"]["epochs_done"] == 1 and state["experience"] == 1
    assert not (tmp_path / rundir.LOCK).exists()


def test_a_huge_learning_rate_diverges_with_an_error_not_chance_accuracy():
    with pytest.raises(DivergenceError, match="diverged"):
        run(tiny_stream(2), _strategy(lr=1e30), CFG)


def test_explosive_finite_losses_warn_in_the_log_and_in_metrics(tmp_path, caplog):
    strategy = _strategy()
    original = strategy.train_step

    def explosive(x, y, task_id):
        logs = original(x, y, task_id)
        return {**logs, "loss": 1e12, "ce": 1e12} if task_id == 1 else logs

    strategy.train_step = explosive
    with caplog.at_level(logging.WARNING, logger="phn"):
        results = run(tiny_stream(2), strategy, CFG, out_dir=tmp_path, config={"a": 1})
    assert len(results.warnings) == 1 and "explosive loss 1e+12 at experience 2, epoch 1, step 1" in results.warnings[0]
    assert "explosive loss" in caplog.text
    assert json.loads((tmp_path / "metrics.json").read_text())["warnings"] == results.warnings


@pytest.mark.parametrize("logged, warns", [({"loss": 1e12}, False), ({"ce": 1e12, "loss": 1e12}, True)])
def test_the_explosive_check_compares_the_task_loss_not_the_regulariser(logged, warns):
    """PartialHN logs loss = CE + beta * reg; the Eq. 7 penalty starts each later experience large by
    design, so only a huge CE (its "ce") is explosive. Without "ce" the full loss is the task loss."""
    strategy = _strategy()
    original = strategy.train_step

    def regularised(x, y, task_id):
        logs = original(x, y, task_id)
        if task_id == 1:
            return {**logs, "ce": logs["loss"], **logged}
        return logs

    strategy.train_step = regularised
    results = run(tiny_stream(2), strategy, CFG)
    assert bool(results.warnings) is warns


# ----------------------------------------------------------------------------- item 3: provenance
def test_config_json_records_code_and_the_cache_key_includes_it(tmp_path, monkeypatch, caplog):
    stream = tiny_stream(2)
    first = run(stream, _strategy(), CFG, out_dir=tmp_path, config={"a": 1})
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["code"]["phn_sha256"] == provenance.source_fingerprint() and saved["data"] == []
    assert run(stream, _strategy(), CFG, out_dir=tmp_path, config={"a": 1}).cached
    monkeypatch.setattr(provenance, "source_fingerprint", lambda: "0" * 64)  # "a fix to phn"
    with caplog.at_level(logging.INFO, logger="phn"):
        kept = run(stream, _strategy(), CFG, out_dir=tmp_path, config={"a": 1}, reuse_other_code=True)
    assert kept.cached and "OTHER phn code" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="phn"):
        again = run(stream, _strategy(), CFG, out_dir=tmp_path, config={"a": 1})
    assert not again.cached and "computed by other phn code" in caplog.text
    np.testing.assert_array_equal(again.acc, first.acc)
    assert json.loads((tmp_path / "config.json").read_text())["code"]["phn_sha256"] == "0" * 64


def test_code_fingerprint_covers_the_package_source_only():
    files = provenance.source_files()
    assert any(p.name == "train.py" for p in files) and all(p.suffix == ".py" for p in files)
    assert len(provenance.source_fingerprint()) == 64
    names = {p.relative_to(provenance.PACKAGE_DIR).as_posix() for p in files}
    assert {"train.py", "strategies/base.py", "hyper/hypernet.py", "sweep.py", "cli.py"} <= names
    assert not names & {"ledger.py", "plots.py", "profiles.py", "experiments/benchmarks.py"}


def test_modules_left_out_of_the_fingerprint_never_run_inside_a_training_run(tmp_path):
    """A run trained through the CLI (an HN with curves, the regulariser and the look-ahead; LR with
    its buffer) in a fresh process imports none of NOT_IN_RUNS: editing them cannot change a result."""
    script = f"""
import sys
from phn.cli import main
for strategy in ("hn", "lr"):
    main(["run", "--strategy", strategy, "--stream", "split-fashionmnist", "--num-experiences", "2",
          "--max-per-class", "4", "--batch-size", "4", "--epochs", "1", "--eval-every", "1", "--freeze-depth", "4",
          "--out", r"{tmp_path}/" + strategy, "--no-progress"])
left_out = {provenance.NOT_IN_RUNS!r}
loaded = [m.__file__ for m in list(sys.modules.values()) if (m.__name__ or "").startswith("phn") and getattr(m, "__file__", None)]
bad = [f for f in loaded if any(("/phn/" + part) in f for part in left_out)]
assert not bad, bad
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PHN_SMOKE": "1"})
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_data_identity_ignores_where_files_lie_but_not_their_content():
    entry = {"dataset": "d", "split": "train", "folder": "/a", "files": [{"path": "/a/x.gz", "sha256": "1"}]}
    moved = {**entry, "folder": "/b", "files": [{"path": "/b/x.gz", "sha256": "1"}]}
    altered = {**entry, "files": [{"path": "/a/x.gz", "sha256": "2"}]}
    key = rundir.run_key({"data": [entry]})["data"]
    assert rundir.run_key({"data": [moved]})["data"] == key != rundir.run_key({"data": [altered]})["data"]


# ----------------------------------------------------------------------------- item 4: never lost silently
def test_a_second_run_on_a_directory_in_use_refuses(tmp_path):
    lock = rundir.open_directory(tmp_path)  # this process holds it: alive
    try:
        with pytest.raises(RunLockedError, match=f"in use by process {os.getpid()}"):
            run(tiny_stream(2), _strategy(), CFG, out_dir=tmp_path, config={"a": 1})
    finally:
        lock.release()
    assert not (tmp_path / rundir.LOCK).exists()
    run(tiny_stream(2), _strategy(), CFG, out_dir=tmp_path, config={"a": 1})


def test_a_stale_lock_is_broken_with_a_notice(tmp_path, caplog):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / rundir.LOCK).write_text(json.dumps({"host": socket.gethostname(), "pid": gone.pid}))
    with caplog.at_level(logging.WARNING, logger="phn"):
        run(tiny_stream(2), _strategy(), CFG, out_dir=tmp_path, config={"a": 1})
    assert "breaking the stale lock" in caplog.text and f"process {gone.pid} is gone" in caplog.text


def test_a_lock_from_another_host_is_stale_only_when_not_refreshed(tmp_path, monkeypatch):
    path = tmp_path / rundir.LOCK
    path.write_text(json.dumps({"host": "some-other-node", "pid": 1}))
    with pytest.raises(RunLockedError, match="some-other-node"):
        rundir.open_directory(tmp_path)
    old = path.stat().st_mtime - 3600
    os.utime(path, (old, old))
    monkeypatch.setenv(rundir.STALE_ENV, "600")
    rundir.open_directory(tmp_path).release()


def test_a_different_configuration_refuses_unless_overwrite_and_then_leaves_no_stale_file(tmp_path):
    stream = tiny_stream(2)
    run(stream, _strategy(), CFG, out_dir=tmp_path, config={"log": True})
    assert (tmp_path / "steps.csv").exists()
    quiet = TrainConfig(epochs=2, batch_size=16, eval_batch_size=8, seed=3, log_steps=False)
    with pytest.raises(RunDirectoryError, match=r"log: True -> False.*--overwrite"):
        run(stream, _strategy(), quiet, out_dir=tmp_path, config={"log": False})
    run(stream, _strategy(), quiet, out_dir=tmp_path, config={"log": False}, overwrite=True)
    assert not (tmp_path / "steps.csv").exists()
    assert Results.load(tmp_path).config["log"] is False


def test_run_directory_errors_are_one_line(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(RunDirectoryError, match="is an existing file"):
        rundir.open_directory(a_file)
    with pytest.raises(RunDirectoryError, match="cannot write to run directory"):
        rundir.open_directory(a_file / "below")
    with pytest.raises(RunDirectoryError, match="cannot write to run directory /proc/phn-test"):
        rundir.open_directory(__import__("pathlib").Path("/proc/phn-test"))


def test_files_are_written_with_the_umask_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        run(tiny_stream(2), _strategy(), CFG, out_dir=tmp_path, config={"a": 1})
    finally:
        os.umask(previous)
    for name in ("config.json", "metrics.json", "accuracy.csv", "steps.csv", rundir.MARKER, CHECKPOINT):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name


# ----------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("name", ["naive", "ewc", "lr", "hn"])
def test_resume_from_the_middle_of_an_experience_is_bit_identical(name, tmp_path):
    stream = tiny_stream(3)
    three = TrainConfig(epochs=3, batch_size=16, eval_batch_size=8, seed=3, eval_every=1, eval_unit="epoch")
    reference = run(stream, _strategy(name), three, config={"s": name})
    with pytest.raises(Killed):  # 2 batches per epoch: die in experience 3's third epoch
        run(stream, _dying(_strategy(name), 2, 5), three, out_dir=tmp_path, config={"s": name})
    state = load_checkpoint(tmp_path / CHECKPOINT)
    assert state["experience"] == 1 and state["partial"]["epochs_done"] == 2
    resumed = run(stream, _strategy(name, seed=99), three, out_dir=tmp_path, resume=True, config={"s": name})
    np.testing.assert_array_equal(resumed.acc, reference.acc)
    pd.testing.assert_frame_equal(resumed.steps, reference.steps)
    pd.testing.assert_frame_equal(resumed.curves, reference.curves)


def test_checkpoint_interval_limits_mid_experience_checkpoints(tmp_path, monkeypatch):
    import phn.train as train

    saved = []
    original = train._save_checkpoint
    monkeypatch.setattr(train, "_save_checkpoint", lambda path, state: (saved.append(state["partial"]),
                                                                          original(path, state)))
    run(tiny_stream(2), _strategy(), CFG, out_dir=tmp_path / "a", config={"a": 1})
    assert [p is None for p in saved] == [False, True, False, True]  # every epoch, every experience
    saved.clear()
    run(tiny_stream(2), _strategy(), CFG, out_dir=tmp_path / "b", config={"a": 1}, checkpoint_every_s=3600)
    assert [p is None for p in saved] == [True, True]
    assert (Results.load(tmp_path / "a").checkpoint_time > 0).all()


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_a_crafted_checkpoint_cannot_run_code(tmp_path):
    stream = tiny_stream(2)
    run(stream, _strategy(), CFG, out_dir=tmp_path, config={"a": 1})
    (tmp_path / rundir.MARKER).unlink()
    exploit = _Exploit()
    exploit.target = tmp_path / "pwned"
    torch.save({"experience": 0, "config": {}, "payload": exploit}, tmp_path / CHECKPOINT)
    torch.load(tmp_path / CHECKPOINT, weights_only=False)  # the file is a real exploit when trusted...
    assert exploit.target.exists()
    exploit.target.unlink()
    with pytest.raises(CorruptRunError, match="cannot be loaded"):  # ...and phn never trusts it
        run(stream, _strategy(), CFG, out_dir=tmp_path, config={"a": 1}, resume=True)
    assert not exploit.target.exists()


def test_a_truncated_checkpoint_is_a_one_line_error(tmp_path):
    stream = tiny_stream(2)
    run(stream, _strategy(), CFG, out_dir=tmp_path, config={"a": 1})
    data = (tmp_path / CHECKPOINT).read_bytes()
    (tmp_path / CHECKPOINT).write_bytes(data[: len(data) // 2])
    (tmp_path / rundir.MARKER).unlink()
    with pytest.raises(CorruptRunError, match=r"checkpoint.pt cannot be loaded .*rerun without --resume"):
        run(stream, _strategy(), CFG, out_dir=tmp_path, config={"a": 1}, resume=True)
