"""Appendix E (Figure 12): the cosine similarity of the look-ahead's two gradients.

Every HN step after the first experience logs ``cos(g1, g2)`` (``steps.csv``, column ``cos``): g1 is
the gradient of the cross-entropy, g2 the regulariser's gradient taken at the virtual update (Algorithm
1). The paper shows it negative for HN-4 throughout the first epoch of experience 2, whatever the seed.

The runs are the benchmark notebook's (:class:`phn.experiments.benchmarks.BenchmarkConfig` with the
same sizes gives the same run configurations), so after that notebook this one trains only the seeds
and depths it adds.
"""

from __future__ import annotations

from collections.abc import Mapping

import os
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from tqdm import tqdm

from phn.config import ConfigError
from phn.experiments.benchmarks import BenchmarkConfig, StreamSizes
from phn.ledger import Finding, judge, unconverged
from phn.results import Results
from phn.train import run_config, run_dir_for


@dataclass(frozen=True)
class CosineConfig(StreamSizes):
    """The gradient-similarity experiment: :class:`~phn.experiments.benchmarks.StreamSizes` (the
    benchmark's runs) plus the fields below. Every field is a notebook parameter.

    Attributes:
        seeds: one run per seed (the paper: several; default 0, 1, 2).
        depths: freeze depths of the HN-k runs (1..4; the paper's figure: 4).
        smoothing: steps in the rolling mean drawn over the per-step values.
    """

    section: ClassVar[str] = "cosine"

    seeds: tuple[int, ...] = (0, 1, 2)
    depths: tuple[int, ...] = (4, 2)
    smoothing: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.depths or any(not 1 <= k <= 4 for k in self.depths):
            raise ConfigError(f"CosineConfig.depths must be freeze depths in 1..4, got {list(self.depths)}")
        if self.smoothing < 1:
            raise ConfigError(f"CosineConfig.smoothing must be positive, got {self.smoothing}")

    def benchmark(self, strategies: tuple[str, ...] = ()) -> BenchmarkConfig:
        """The benchmark configuration whose HN-k runs these are (``strategies``: the HN-k of ``depths``)."""
        return super().benchmark(tuple(strategies) or tuple(f"HN-{k}" for k in self.depths))



def run_cosine(cfg: CosineConfig, root: str | os.PathLike | None = None,
               progress: bool | None = None) -> dict[tuple[str, int], Results]:
    """Train (or load from the cache) HN-k for every depth and seed; results by (label, seed)."""
    bench = cfg.benchmark()
    jobs = [(label, seed) for label in bench.strategies for seed in cfg.seeds]
    results = {}
    for label, seed in tqdm(jobs, desc="cosine runs", disable=progress is False, dynamic_ncols=True):
        run_cfg = bench.run_config(label, seed)
        results[label, seed] = run_config(run_cfg, resume=True, out_dir=run_dir_for(run_cfg, root), progress=progress)
    return results


def cosine_steps(results: dict[tuple[str, int], Results]) -> pd.DataFrame:
    """One row per logged step with a cosine: model, seed, experience (1-based), epoch (1-based), step
    (within the experience, from 0), cos. The first experience has none (no look-ahead there)."""
    frames = []
    for (model, seed), res in results.items():
        steps = res.steps
        if steps.empty or "cos" not in steps:
            continue
        steps = steps.dropna(subset=["cos"])
        frames.append(pd.DataFrame({"model": model, "seed": seed, "experience": steps.experience + 1,
                                    "epoch": steps.epoch + 1, "step": steps.groupby("experience").cumcount(),
                                    "cos": steps.cos}))
    columns = ["model", "seed", "experience", "epoch", "step", "cos"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def negative_share(steps: pd.DataFrame, by: tuple[str, ...] = ("model", "experience")) -> pd.DataFrame:
    """Per group: ``mean_cos``, ``negative_share`` (percent of steps with cos < 0) and ``steps``."""
    grouped = steps.groupby(list(by), sort=False).cos
    out = grouped.agg(mean_cos="mean", steps="size").join(grouped.apply(lambda c: 100 * float(np.mean(c < 0)))
                                                          .rename("negative_share"))
    return out.reset_index()


def figure12(steps: pd.DataFrame, model: str = "HN-4") -> pd.DataFrame:
    """The steps of the paper's figure: ``model``, first epoch of experience 2."""
    return steps[(steps.model == model) & (steps.experience == 2) & (steps.epoch == 1)]


def cosine_findings(steps: pd.DataFrame, configuration: str, model: str = "HN-4",
                    paper_setting: bool = False, converged: Mapping[str, bool] | None = None) -> list[Finding]:
    """The ledger's finding for ``figure12-cosine``, by the ledger's rule: the per-seed mean cosine
    over the first epoch of experience 2 of ``model``, and its 95 % interval over seeds, which must lie
    below zero ("negative whatever the seed": :func:`phn.ledger.compare` against 0, expected
    ``"less"``). ``converged``: strategy -> converged at this profile; ``model`` marked False is not
    judged (inconclusive). No finding when ``model`` did not run."""
    first = figure12(steps, model)
    if first.empty:
        return []
    per_seed = negative_share(first, by=("seed",))
    table = pd.concat([per_seed.assign(run=model), per_seed.assign(run="0", mean_cos=0.0)])
    text = (f"{model}, first epoch of experience 2, per seed: "
            + ", ".join(f"seed {row.seed} mean {row.mean_cos:+.3f} ({row.negative_share:.0f} % of {row.steps} steps "
                        "negative)" for row in per_seed.itertuples())
            + "; mean cosine, 95 % interval over seeds")
    return [judge("figure12-cosine", [(model, "0", "mean_cos", "less")], table, text, configuration, paper_setting,
                  key="run", margin=0.0, not_converged=unconverged([model], converged), digits=3)]


__all__ = ["CosineConfig", "cosine_findings", "cosine_steps", "figure12", "negative_share", "run_cosine"]
