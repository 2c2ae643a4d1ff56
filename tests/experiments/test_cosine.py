"""Appendix E: the cosine of the look-ahead's gradients, from the benchmark's runs."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from phn.config import ConfigError, from_dict
from phn.experiments.benchmarks import BenchmarkConfig
from phn.experiments.cosine import CosineConfig, cosine_findings, cosine_steps, figure12, negative_share, run_cosine
from phn.results import Results

FASHION = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def test_runs_are_the_benchmark_notebooks():
    cosine, bench = CosineConfig(), BenchmarkConfig()
    for k in (4, 2):
        assert cosine.benchmark().run_config(f"HN-{k}", 1).digest() == bench.run_config(f"HN-{k}", 1).digest()
    with pytest.raises(ConfigError, match="depths"):
        from_dict(CosineConfig, {"depths": [0]})
    with pytest.raises(ConfigError, match="split stream"):
        from_dict(CosineConfig, {"stream": "cross:digits->digits"})


def _results(cos_per_experience):
    rows = [{"experience": e, "epoch": 0, "step": i, "loss": 1.0, "ce": 1.0, "reg": 0.0, "cos": c}
            for e, values in enumerate(cos_per_experience) for i, c in enumerate(values)]
    return Results(np.zeros((2, 2)), np.zeros(2), np.zeros(2), np.zeros(2), steps=pd.DataFrame(rows))


def test_steps_shares_and_findings():
    nan = float("nan")
    results = {("HN-4", 0): _results([[nan, nan], [-0.5, -0.1, 0.2]]), ("HN-4", 1): _results([[nan], [-0.2, -0.4]])}
    steps = cosine_steps(results)
    assert len(steps) == 5 and set(steps.experience) == {2} and list(steps.step[:3]) == [0, 1, 2]
    share = negative_share(steps).iloc[0]
    assert share.steps == 5 and share.negative_share == pytest.approx(80.0)
    (finding,) = cosine_findings(steps, "cfg")
    # two seeds, means -0.133 and -0.3: t(0.975, 1) = 12.7 makes the interval cross zero
    assert finding.verdict == "inconclusive" and "seed 0 mean -0.133 (67 % of 3 steps negative)" in finding.ours
    # four seeds, means -0.133, -0.3, -0.25, -0.2: mean -0.221, sd 0.0717, t(0.975, 3) = 3.18: upper end -0.108
    three = {**results, ("HN-4", 2): _results([[nan], [-0.3, -0.2]]), ("HN-4", 3): _results([[nan], [-0.2]])}
    (finding,) = cosine_findings(cosine_steps(three), "cfg")
    assert finding.verdict == "holds qualitatively" and "mean cos HN-4 - 0 -0.221 [-0.334, -0.108]" in finding.ours
    assert cosine_findings(cosine_steps(three), "cfg", paper_setting=True)[0].verdict == "holds"
    assert cosine_findings(cosine_steps(three), "cfg", converged={"HN-4": False})[0].verdict == "inconclusive"
    positive = {("HN-4", s): _results([[nan], [0.5 - 0.1 * s, 0.1]]) for s in range(3)}
    assert cosine_findings(cosine_steps(positive), "cfg")[0].verdict == "does not hold at this scale"
    mixed = {**positive, ("HN-4", 3): _results([[nan], [-0.3]])}
    assert cosine_findings(cosine_steps(mixed), "cfg")[0].verdict == "inconclusive"
    assert cosine_findings(cosine_steps(mixed), "cfg", model="HN-2") == []
    assert figure12(steps).seed.tolist() == [0, 0, 0, 1, 1]


@pytest.mark.skipif(not os.path.exists(FASHION), reason="needs apt-get install dataset-fashion-mnist")
def test_tiny_run_logs_cosines_after_the_first_experience(tmp_path):
    cfg = CosineConfig(depths=(4,), seeds=(0,), max_per_class=8, epochs=1)
    steps = cosine_steps(run_cosine(cfg, root=tmp_path, progress=False))
    assert set(steps.experience) == {2, 3, 4, 5} and steps.cos.between(-1, 1).all()
