"""benchmarks/engine_speed.py times the baselines with and without the speed levers."""

import pytest

from benchmarks.engine_speed import build_baseline, main, measure_baseline


@pytest.mark.parametrize("name", ["Naive", "EWC", "LR-2"])
def test_measure_baseline_times_experience_two_steps(name):
    for levers in (False, True):
        assert measure_baseline(name, batch_size=4, steps=1, warmup=0, channels_last=levers, fused_adam=levers) > 0


def test_build_baseline_rejects_an_unknown_name():
    with pytest.raises(ValueError, match="unknown baseline 'LR-9'"):
        build_baseline("LR-9", 2, 2)


def test_main_prints_a_row_per_baseline(capsys):
    main(["--strategy", "Naive", "--batch-size", "4", "--steps", "1", "--threads", "1", "--levers"])
    out = capsys.readouterr().out
    assert "channels_last=True, fused_adam=True" in out and "| Naive  |     4 |" in out
