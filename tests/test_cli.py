"""python -m phn run: bad values fail in one line with exit status 2; a real run prints a summary."""

import subprocess
import sys

import pytest

from phn.cli import main

FASHION = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["run", "--strategy", "foo"], "invalid choice: 'foo'"),
        (["run", "--freeze-depth", "5"], "--freeze-depth must be in 0..4"),
        (["run", "--freeze-depth", "-1"], "--freeze-depth must be in 0..4"),
        (["run", "--epochs", "-2"], "epochs must be >= 0"),
        (["run", "--epochs", "two"], "invalid int value"),
        (["run", "--stream", "split-imagenet"], "unknown stream"),
        (["run", "--class-order", "0,0,1"], "repeats class ids"),
        (["run", "--lookahead", "third"], "invalid choice"),
        (["run", "--resume"], "--resume needs --out"),
        (["run", "--init", "xavier"], "invalid choice: 'xavier'"),
        (["run", "--eval-order", "random"], "invalid choice: 'random'"),
        (["run", "--extra-eval-orders", "sorted,random"], "is not one of"),
        (["run", "--extra-eval-orders", "interleaved"], "evaluation orders repeat"),
        (["run", "--lr", "inf"], "lr must be a finite positive number"),
        (["run", "--lr", "nan"], "lr must be a finite positive number"),
        (["run", "--beta", "inf"], "beta must be a finite number"),
        (["run", "--ewc-lambda", "inf"], "ewc_lambda must be a finite number"),
        (["run", "--replay-coef", "nan"], "replay_coef must be a finite number"),
        (["run", "--seed", "-1"], "--seed must be an integer in 0..2**63-1, got -1"),
        (["run", "--seed", str(2**64)], "--seed must be an integer in 0..2**63-1"),
        (["run", "--stream-seed", "-5"], "--stream-seed must be an integer"),
        (["run", "--device", "tpu"], "unknown device 'tpu'"),
        (["run", "--classes-per-experience", "3"], "10 classes do not split into experiences of 3"),
        (["run", "--checkpoint-minutes", "-1"], "--checkpoint-minutes must be >= 0"),
    ],
)
def test_bad_values_fail_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) if "invalid" in message else _no_raise():
        code = main(argv)
        assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_missing_data_fails_with_one_line_naming_the_dataset(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PHN_DATA", str(tmp_path))
    assert main(["run", "--stream", "split-cifar100", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "CIFAR-100" in err and str(tmp_path) in err


def test_help_documents_every_option():
    out = subprocess.run([sys.executable, "-m", "phn", "run", "--help"], capture_output=True, text=True, check=True).stdout
    for option in ("--stream", "--strategy", "--freeze-depth", "--epochs", "--class-order", "--max-per-class",
                   "--out", "--resume", "--lookahead", "--no-verify-checksums", "--eval-order", "--buffer-size",
                   "--init", "--extra-eval-orders"):
        assert option in out


@pytest.mark.skipif(not __import__("os").path.exists(FASHION), reason="needs apt-get install dataset-fashion-mnist")
def test_cli_runs_split_fashionmnist_and_caches(tmp_path, capsys):
    argv = ["run", "--stream", "split-fashionmnist", "--strategy", "hn", "--freeze-depth", "4", "--epochs", "1",
            "--seed", "0", "--class-order", "0,1,2,3,4,5,6,7,8,9", "--max-per-class", "20", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "HN-4 on split-fashionmnist (5 experiences" in out and "ACA" in out
    for name in ("config.json", "metrics.json", "accuracy.csv", "checkpoint.pt"):
        assert (tmp_path / name).exists()
    assert main(argv) == 0  # second time: from the results cache, and it says so
    captured = capsys.readouterr()
    again = captured.out.splitlines()
    assert again[:-2] == out.splitlines()[:-2]  # the per-experience table
    assert again[-2] == out.splitlines()[-2].replace(" s  parameters", " s (cached: measured when these results "
                                                     "were computed)  parameters")
    assert "results of an identical earlier run" in captured.err


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_options_reach_the_config():
    from phn.cli import build_parser, config_from_args

    args = build_parser().parse_args(["run", "--init", "kaiming", "--eval-order", "index",
                                      "--extra-eval-orders", "sorted,interleaved", "--prefix-norm", "batch"])
    cfg = config_from_args(args)
    assert cfg.hyper.init == "kaiming" and cfg.model.prefix_norm == "batch"
    assert (cfg.train.eval_order, cfg.train.extra_eval_orders) == ("index", ("sorted", "interleaved"))
    assert config_from_args(build_parser().parse_args(["run"])).hyper.init == "pytorch"
