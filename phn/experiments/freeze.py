"""Section 4.1 (Figure 4): how many stages can be frozen, depending on how the two experiences differ.

Two-experience streams ``cross:<first>-><second>`` (5 random classes of each dataset; ``a->a`` takes two
disjoint blocks of classes of one dataset, the "similar distribution" case). For every freeze depth
k = 0..4 we train experience 1, freeze the stem and stages 1..k, learn experience 2 above the prefix
and report the test accuracy on experience 2 right after training it:

- ``lr``: the plain network fine-tuned above the frozen prefix (latent replay LR-k with c = 0, i.e.
  the paper's "ResNet-k"). Its experience 1 does not depend on k, so it is trained once per
  (pair, seed) and every other depth starts from that checkpoint (:func:`phn.train.run`'s
  ``start_from``; identical results, tested).
- ``hn``: the partial hypernetwork HN-k (HN-0 = HN-F), whose experience 1 depends on k.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import pandas as pd
from tqdm import tqdm

from phn.config import ConfigError, RunConfig, from_dict
from phn.data import DATASETS
from phn.experiments.convergence import half_length
from phn.ledger import Finding, judge, unconverged
from phn.profiles import Profiled
from phn.results import Results
from phn.train import kept_checkpoint, run_config, run_dir_for

STRATEGY_LABELS = {"lr": "fine-tuned (LR-k, c = 0)", "hn": "partial HN (HN-k)"}


@dataclass(frozen=True)
class FreezeConfig(Profiled):
    """The freeze-depth experiment (Section 4.1). Every field is a notebook parameter.

    Attributes:
        pairs: streams as ``"<first>-><second>"`` dataset names (registered datasets).
        depths: freeze depths k (0..4).
        strategies: ``"lr"`` (fine-tuned above the prefix, c = 0) and/or ``"hn"``.
        seeds: one run per seed (model init and the classes drawn for each experience).
        classes_per_experience: random classes per experience (paper: 5).
        max_per_class: first N training and test images per class (None: all).
        max_per_class_test: test images per class, apart from ``max_per_class`` (None: as
            ``max_per_class``; ``"all"``: the whole test set). scikit-learn's digits have about 180
            images per class in all, so their test sets stay small whatever this says.
        epochs: epochs per experience.
        profile, overridden: the :mod:`phn.profiles` profile and the fields set apart from it.
        batch_size: training batch size (paper: 64; profile ``cpu``: 32, the sizing study's: on a
            CPU an update costs about the same per image at any batch size, and what the
            hypernetwork needs to converge is Adam updates per experience).
    """

    section: ClassVar[str] = "freeze"

    pairs: tuple[str, ...] = ("fashionmnist->fashionmnist", "digits->fashionmnist", "fashionmnist->digits")
    depths: tuple[int, ...] = (0, 1, 2, 3, 4)
    strategies: tuple[str, ...] = ("lr", "hn")
    seeds: tuple[int, ...] = (0, 1)
    classes_per_experience: int = 5
    max_per_class: int | None = 50
    max_per_class_test: int | Literal["all"] | None = None
    epochs: int = 2
    batch_size: int = 16
    profile: str = "cpu"
    overridden: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.check_profile()
        for pair in self.pairs:
            first, _, second = pair.partition("->")
            if first not in DATASETS or second not in DATASETS:
                raise ConfigError(f"FreezeConfig.pairs: {pair!r} is not '<dataset>-><dataset>' with datasets "
                                  f"in {sorted(DATASETS)}")
        if not self.pairs or not self.depths or not self.seeds or not self.strategies:
            raise ConfigError("FreezeConfig: pairs, depths, strategies and seeds must not be empty")
        if any(not 0 <= k <= 4 for k in self.depths):
            raise ConfigError(f"FreezeConfig.depths must lie in 0..4, got {list(self.depths)}")
        if any(s not in STRATEGY_LABELS for s in self.strategies):
            raise ConfigError(f"FreezeConfig.strategies must be among {list(STRATEGY_LABELS)}, got {list(self.strategies)}")
        if self.epochs < 1 or self.batch_size < 1 or self.classes_per_experience < 1:
            raise ConfigError("FreezeConfig: epochs, batch_size and classes_per_experience must be positive")
        if self.max_per_class is not None and self.max_per_class < 1:
            raise ConfigError(f"FreezeConfig.max_per_class must be positive or None, got {self.max_per_class}")
        self.check_test_size()

    @property
    def chance(self) -> float:
        """Chance accuracy of one experience (percent): 100 / classes per experience."""
        return 100 / self.classes_per_experience

    def half_length(self) -> FreezeConfig:
        """The chapter's convergence check: the first seed with half the epochs
        (:func:`phn.experiments.convergence.half_length_check`)."""
        return dataclasses.replace(self, seeds=self.seeds[:1], epochs=half_length(self.epochs))

    @property
    def datasets(self) -> tuple[str, ...]:
        """The datasets the pairs read."""
        return tuple(dict.fromkeys(name for pair in self.pairs for name in pair.split("->")))

    def run_config(self, pair: str, strategy: str, depth: int, seed: int) -> RunConfig:
        """The configuration of one run of the grid."""
        strategy_cfg: dict[str, Any] = {"name": strategy}
        if strategy == "lr":
            strategy_cfg.update(replay_coef=0.0, buffer_size=0)
        return from_dict(RunConfig, {
            "stream": {"name": f"cross:{pair}", "seed": seed, "classes_per_experience": self.classes_per_experience,
                       "max_per_class": self.max_per_class, "max_per_class_test": self.max_per_class_test},
            "strategy": strategy_cfg, "model": {"freeze_depth": depth},
            "train": {"epochs": self.epochs, "batch_size": self.batch_size, "seed": seed},
        })


def run_freeze(cfg: FreezeConfig, root: str | os.PathLike | None = None,
               progress: bool | None = None) -> tuple[pd.DataFrame, dict[tuple[str, str, int, int], Results]]:
    """Train the grid (cached run directories under ``root``, default ``runs/``).

    Returns:
        ``runs``: one row per (pair, strategy, depth, seed) with ``acc_second`` (accuracy on experience 2
        after training it, percent), ``acc_first`` (experience 1 after training it), ``acc_first_end``
        (experience 1 at the end), ``train_time_s``; and the results by (pair, strategy, depth, seed).
    """
    grid = [(pair, strategy, seed) for pair in cfg.pairs for strategy in cfg.strategies for seed in cfg.seeds]
    rows, results = [], {}
    bar = tqdm(total=len(grid) * len(cfg.depths), desc="freeze runs", disable=progress is False, dynamic_ncols=True)
    for pair, strategy, seed in grid:
        source: Path | None = None  # LR: experience 1 trained once, at the first depth
        for depth in cfg.depths:
            run_cfg = cfg.run_config(pair, strategy, depth, seed)
            out = run_dir_for(run_cfg, root)
            bar.set_postfix_str(f"{pair} {run_cfg.label} seed {seed}")
            if strategy == "lr" and source is not None:
                res = run_config(run_cfg, resume=True, out_dir=out, progress=progress, start_from=source)
            else:
                res = run_config(run_cfg, resume=True, out_dir=out, progress=progress,
                                 keep_checkpoints=(0,) if strategy == "lr" else ())
                kept = out / kept_checkpoint(0)
                source = kept if strategy == "lr" and kept.exists() else None
            results[pair, strategy, depth, seed] = res
            rows.append({"pair": pair, "strategy": strategy, "depth": depth, "seed": seed,
                         "acc_second": 100 * res.acc[1, 1], "acc_first": 100 * res.acc[0, 0],
                         "acc_first_end": 100 * res.acc[1, 0], "train_time_s": float(res.train_time.sum())})
            bar.update()
    bar.close()
    return pd.DataFrame(rows), results


def freeze_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std over seeds of the accuracy on experience 2, per (pair, strategy, depth)."""
    grouped = runs.groupby(["pair", "strategy", "depth"], sort=False).acc_second
    out = grouped.agg(mean="mean", std="std", seeds="count").reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def freeze_claims(summary: pd.DataFrame) -> pd.DataFrame:
    """The numbers behind Section 4.1's claims, per (pair, strategy): accuracy on experience 2 at the
    shallowest and the deepest freeze depth of the grid and the drop between them (``accuracy_drop``,
    points)."""
    rows = []
    for (pair, strategy), group in summary.groupby(["pair", "strategy"], sort=False):
        group = group.sort_values("depth")
        first, last = group.iloc[0], group.iloc[-1]
        a, _, b = pair.partition("->")
        rows.append({"pair": pair, "similar": a == b, "strategy": strategy, "k_low": int(first.depth),
                     "k_high": int(last.depth), "acc_low": first["mean"], "acc_high": last["mean"],
                     "accuracy_drop": first["mean"] - last["mean"]})
    return pd.DataFrame(rows)


def freeze_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The figure's numbers as a table: one row per (stream, strategy), one column per depth k with
    "mean ± std" (percent)."""
    text = summary.assign(cell=[f"{m:.1f} ± {s:.1f}" for m, s in zip(summary["mean"], summary["std"], strict=True)])
    table = text.pivot(index=["pair", "strategy"], columns="depth", values="cell")
    table.columns = [f"k = {k}" for k in table.columns]
    return table.reset_index()


def freeze_drops(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (pair, strategy, seed): the accuracy on experience 2 lost from the shallowest to the deepest
    freeze depth of the grid (``drop``, points): the seed-paired numbers of Section 4.1's claims.
    Column ``run`` is ``"<strategy> <pair>"``, the key :func:`phn.ledger.judge` pairs on."""
    rows = []
    for (pair, strategy, seed), group in runs.groupby(["pair", "strategy", "seed"], sort=False):
        group = group.sort_values("depth")
        rows.append({"pair": pair, "strategy": strategy, "seed": seed, "run": f"{strategy} {pair}",
                     "drop": float(group.acc_second.iloc[0] - group.acc_second.iloc[-1]),
                     "k_low": int(group.depth.iloc[0]), "k_high": int(group.depth.iloc[-1])})
    return pd.DataFrame(rows, columns=["pair", "strategy", "seed", "run", "drop", "k_low", "k_high"])


def freeze_findings(runs: pd.DataFrame, configuration: str, paper_setting: bool = False,
                    converged: Mapping[str, bool] | None = None, below_chance: Sequence[str] = (),
                    margin: float = 1.0) -> list[Finding]:
    """The ledger's findings for ``4.1-similar`` and ``4.1-simpler-second``, by the ledger's rule
    (:func:`phn.ledger.judge`), every strategy's parts in one claim:

    1. ``4.1-similar``: for each strategy and each different pair, freezing (k_low to k_high) costs more
       accuracy on experience 2 than on the similar pair (``a->a``), seed-paired, beyond ``margin``;
    2. ``4.1-simpler-second``: for each strategy and each pair of datasets run both ways, freezing
       costs less when the second task is the simpler one, taken as the direction with the higher mean
       accuracy at k_low.

    Args:
        runs: :func:`run_freeze`'s rows.
        converged: strategy (``"lr"``/``"hn"``) -> converged at this profile (the chapter's check);
            False leaves both claims not judged.
        below_chance: strategies that did not learn experience 2 clearly above chance.
    """
    drops = freeze_drops(runs)
    at_low = runs[runs.depth == runs.depth.min()].groupby(["pair", "strategy"]).acc_second.mean()
    strategies = list(dict.fromkeys(drops.strategy))
    skipped = [STRATEGY_LABELS.get(s, s) for s in unconverged(strategies, converged)]
    below = [STRATEGY_LABELS.get(s, s) for s in strategies if s in below_chance]
    similar_specs, simpler_specs = [], []
    for strategy in strategies:
        pairs = list(dict.fromkeys(drops[drops.strategy == strategy].pair))
        same = [p for p in pairs if p.split("->")[0] == p.split("->")[1]]
        different = [p for p in pairs if p not in same]
        similar_specs += [(f"{strategy} {d}", f"{strategy} {s}", "drop", "greater") for s in same for d in different]
        for pair in different:
            first, _, second = pair.partition("->")
            reverse = f"{second}->{first}"
            if reverse in different and first < second:
                simpler, harder = ((pair, reverse) if at_low[pair, strategy] >= at_low[reverse, strategy]
                                   else (reverse, pair))
                simpler_specs.append((f"{strategy} {harder}", f"{strategy} {simpler}", "drop", "greater"))
    k = f"k = {int(drops.k_low.min())} → {int(drops.k_high.max())}" if len(drops) else ""
    findings = []
    if similar_specs:
        findings.append(judge("4.1-similar", similar_specs, drops,
                              f"accuracy on experience 2 lost from {k}, different pair minus similar pair (points; "
                              f"lr: LR-k with c = 0, hn: HN-k), 95 % interval over seeds", configuration, paper_setting,
                              key="run", margin=margin, not_converged=skipped, below_chance=below))
    if simpler_specs:
        findings.append(judge("4.1-simpler-second", simpler_specs, drops,
                              f"accuracy on experience 2 lost from {k}, harder second task minus simpler second task "
                              "(points; the simpler is the direction more accurate at the shallowest depth), 95 % "
                              "interval over seeds", configuration, paper_setting, key="run", margin=margin,
                              not_converged=skipped, below_chance=below))
    return findings


__all__ = [
    "STRATEGY_LABELS", "FreezeConfig", "freeze_claims", "freeze_drops", "freeze_findings", "freeze_summary",
    "freeze_table", "run_freeze",
]
