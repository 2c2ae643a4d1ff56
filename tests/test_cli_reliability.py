"""The reproductions of issue 11 on the command line, each now a passing test.

Tiny runs on the real FashionMNIST (``--max-per-class 20 --epochs 1`` and similar): a run never
reports numbers it did not produce, and every failure is one line with exit status 2 (1 for a
diverged run, 130 for Ctrl-C), never a traceback.
"""

import gzip
import json
import re
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from phn import rundir
from phn.cli import main
from phn.config import RunConfig, from_dict

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
pytestmark = pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(),
                                reason="needs apt-get install dataset-fashion-mnist")
TINY = ["run", "--strategy", "hn", "--freeze-depth", "4", "--class-order", "0,1,2,3,4,5,6,7,8,9",
        "--max-per-class", "20", "--epochs", "1"]
SLOW = ["run", "--strategy", "hn", "--freeze-depth", "4", "--class-order", "0,1,2,3,4,5,6,7,8,9",
        "--max-per-class", "150", "--epochs", "1"]  # a few seconds: long enough to interrupt


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
    monkeypatch.delenv("PHN_DATA", raising=False)
    monkeypatch.delenv("PHN_VERIFY_CHECKSUMS", raising=False)


def _one_line_error(capsys, code, expected_code=2) -> str:
    """The one ``phn: error:`` line (other lines may only be ``phn:`` notices, e.g. a stale lock broken)."""
    err = capsys.readouterr().err.strip()
    assert code == expected_code, err
    errors = [line for line in err.splitlines() if line.startswith("phn: error:")]
    assert len(errors) == 1 and all(line.startswith("phn: ") for line in err.splitlines()), err
    assert "Traceback" not in err, err
    return errors[0]


def _summary(out: str) -> str:
    """ACA, learning accuracy and forgetting of a run's output (not its time)."""
    return next(line for line in out.splitlines() if line.startswith("ACA")).split("  train time")[0]


def _spawn(argv, **kwargs) -> subprocess.Popen:
    env = {**os.environ, **kwargs.pop("env", {})}  # same threads as this process: same floating point
    return subprocess.Popen([sys.executable, "-m", "phn", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=Path(__file__).parents[1], **kwargs)


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


# ----------------------------------------------------------------------------- item 1
@pytest.mark.parametrize("resume", [True, False])
def test_item1_an_interrupted_rerun_never_reports_the_earlier_runs_numbers(resume, tmp_path, capsys):
    out, reference = tmp_path / "D", tmp_path / "reference"
    assert main([*SLOW, "--out", str(reference)]) == 0
    expected = _summary(capsys.readouterr().out)
    assert main([*SLOW, "--epochs", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main([*SLOW, "--out", str(out)]) == 2  # another configuration: refused, not mixed
    assert "train.epochs: 2 -> 1" in capsys.readouterr().err
    killed = _spawn([*SLOW, "--out", str(out), "--overwrite"])
    old_checkpoint = out / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not (old_checkpoint.exists() and json.loads((out / "config.json").read_text())["train"]["epochs"] == 1
               and torch.load(old_checkpoint, weights_only=True)["config"]["train"]["epochs"] == 1):
        assert killed.poll() is None and time.monotonic() < deadline, killed.communicate()
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (out / "metrics.json").exists() and not (out / rundir.MARKER).exists()
    assert main([*SLOW, "--out", str(out), *(["--resume"] if resume else [])]) == 0  # stale lock broken
    captured = capsys.readouterr()
    assert "1 epoch(s) each" in captured.out and _summary(captured.out) == expected
    assert "breaking the stale lock" in captured.err


# ----------------------------------------------------------------------------- item 2
def test_item2_a_diverging_run_exits_non_zero_without_results(tmp_path, capsys):
    code = main(["run", "--strategy", "naive", "--class-order", "0,1,2,3,4,5,6,7,8,9", "--max-per-class", "20",
                 "--lr", "1e30", "--out", str(tmp_path)])
    err = _one_line_error(capsys, code, expected_code=1)
    assert re.search(r"training diverged: loss (nan|inf) at experience \d/5, epoch 1, step \d+", err), err
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize("options", [["--strategy", "naive", "--lr", "1e6"], ["--lr", "1"]])
def test_item2_explosive_but_finite_losses_warn(options, tmp_path, capsys):
    assert main([*TINY, *options, "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "explosive loss" in captured.err and "warning: explosive loss" in captured.out
    warnings = json.loads((tmp_path / "metrics.json").read_text())["warnings"]
    assert warnings and all("more than 100 x the first loss" in w for w in warnings)


def test_a_large_output_regulariser_alone_is_not_an_explosive_loss(tmp_path, capsys):
    """Eq. 7's penalty has no natural scale (a sum over the generated weights' outputs): beta 1e38
    makes the logged loss huge while the task loss (CE) stays at its scale, so nothing warns."""
    assert main([*TINY, "--beta", "1e38", "--out", str(tmp_path)]) == 0
    assert "explosive loss" not in capsys.readouterr().err
    assert json.loads((tmp_path / "metrics.json").read_text())["warnings"] == []


# ----------------------------------------------------------------------------- item 3
def _modified_fashion_copy(root: Path) -> Path:
    """A copy of the Debian FashionMNIST whose first training label is changed."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for path in FASHION_DIR.glob("*-ubyte.gz"):
        shutil.copy(path, raw / path.name)
    labels = raw / "train-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(labels.read_bytes()))
    content[8] = (content[8] + 1) % 10
    labels.write_bytes(gzip.compress(bytes(content)))
    return root


def test_item3_results_from_other_data_files_are_recomputed(tmp_path, monkeypatch, capsys):
    modified = _modified_fashion_copy(tmp_path / "modified")
    argv = [*TINY, "--no-verify-checksums", "--out", str(tmp_path / "D")]
    monkeypatch.setenv("PHN_DATA", str(modified))
    assert main(argv) == 0
    saved = json.loads((tmp_path / "D" / "config.json").read_text())
    assert any(str(modified) in f["path"] for entry in saved["data"] for f in entry["files"])
    capsys.readouterr()
    monkeypatch.delenv("PHN_DATA")
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "computed from other data files" in err and "train-labels-idx1-ubyte.gz" in err
    saved = json.loads((tmp_path / "D" / "config.json").read_text())
    assert all(f["path"].startswith(str(FASHION_DIR)) for entry in saved["data"] for f in entry["files"])


def test_item3_modified_fashionmnist_fails_its_checksum(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PHN_DATA", str(_modified_fashion_copy(tmp_path / "modified")))
    err = _one_line_error(capsys, main([*TINY]))
    assert "train-labels-idx1-ubyte" in err and "--no-verify-checksums" in err


def test_item3_data_root_errors(tmp_path, monkeypatch, capsys):
    err = _one_line_error(capsys, main([*TINY, "--data-root", str(tmp_path / "nonexistent")]))
    assert "does not exist" in err and "nonexistent" in err
    train_only = tmp_path / "train-only" / "FashionMNIST" / "raw"
    train_only.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        shutil.copy(FASHION_DIR / name, train_only / name)
    monkeypatch.setenv("PHN_DATA", str(tmp_path / "train-only"))
    err = _one_line_error(capsys, main([*TINY]))
    assert str(train_only) in err and str(FASHION_DIR) in err


def test_item3_the_not_found_hint_names_the_cli_switch(tmp_path, capsys):
    err = _one_line_error(capsys, main(["run", "--stream", "split-cifar100", "--data-root", str(tmp_path)]))
    assert "--download" in err


# ----------------------------------------------------------------------------- item 4
def test_item4_two_runs_on_one_directory_at_once(tmp_path, capsys):
    first = _spawn([*SLOW, "--out", str(tmp_path)])
    _wait_for(tmp_path / rundir.LOCK, first)
    err = _one_line_error(capsys, main([*SLOW, "--out", str(tmp_path)]))
    assert f"in use by process {first.pid}" in err
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert not (tmp_path / rundir.LOCK).exists()


def test_item4_no_step_logs_into_an_existing_directory(tmp_path, capsys):
    assert main([*TINY, "--out", str(tmp_path)]) == 0
    assert (tmp_path / "steps.csv").exists()
    err = _one_line_error(capsys, main([*TINY, "--no-step-logs", "--out", str(tmp_path)]))
    assert "train.log_steps: True -> False" in err and "--overwrite" in err
    assert main([*TINY, "--no-step-logs", "--out", str(tmp_path), "--overwrite"]) == 0
    assert not (tmp_path / "steps.csv").exists()


# ----------------------------------------------------------------------------- item 5
def test_item5_bad_run_directories_and_devices_are_one_line(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert "is an existing file" in _one_line_error(capsys, main([*TINY, "--out", str(a_file)]))
    assert "cannot write to run directory" in _one_line_error(capsys, main([*TINY, "--out", "/proc/phn-out"]))
    if not torch.cuda.is_available():
        assert "CUDA is not available" in _one_line_error(capsys, main([*TINY, "--device", "cuda"]))


def test_item5_a_truncated_checkpoint_is_one_line(tmp_path, capsys):
    killed = _spawn([*SLOW, "--out", str(tmp_path)])
    _wait_for(tmp_path / "checkpoint.pt", killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    err = _one_line_error(capsys, main([*SLOW, "--out", str(tmp_path), "--resume"]))
    assert "checkpoint.pt cannot be loaded" in err


@pytest.mark.parametrize("delay", [0.3, 1.0, 3.0])
def test_item5_ctrl_c_at_any_moment_of_start_up_is_one_line(delay, tmp_path):
    process = _spawn([*SLOW, "--out", str(tmp_path)])
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "interrupted" in err


# ----------------------------------------------------------------------------- item 6
def test_item6_resume_mismatch_names_the_differing_settings(tmp_path, capsys):
    killed = _spawn([*SLOW, "--out", str(tmp_path)])
    _wait_for(tmp_path / "checkpoint.pt", killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    err = _one_line_error(capsys, main([*SLOW, "--lr", "0.01", "--out", str(tmp_path), "--resume"]))
    assert "train.lr: 0.001 -> 0.01" in err and "hyper." not in err


def test_item6_config_json_feeds_back_to_from_dict(tmp_path, capsys):
    assert main([*TINY, "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "config.json").read_text())
    assert {"versions", "code", "data"} <= set(saved)
    cfg = from_dict(RunConfig, saved)
    assert cfg.train.epochs == 1 and cfg.stream.class_order == tuple(range(10))
    numpy_cfg = from_dict(RunConfig, {"train": {"epochs": np.int64(2), "lr": np.float32(0.5), "amp": np.bool_(False)},
                                      "stream": {"class_order": [np.int64(1), np.int64(0)], "seed": np.int64(3)}})
    assert numpy_cfg.train.epochs == 2 and type(numpy_cfg.train.epochs) is int and numpy_cfg.train.amp is False
    assert numpy_cfg.stream.class_order == (1, 0) and type(numpy_cfg.stream.seed) is int
