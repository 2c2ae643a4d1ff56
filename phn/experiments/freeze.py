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
from typing import Any, ClassVar

import pandas as pd
from tqdm import tqdm

from phn.config import ConfigError, RunConfig, from_dict, smoke_enabled
from phn.data import DATASETS
from phn.ledger import Finding, verdict_from
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
        epochs: epochs per experience.
        profile, overridden: the :mod:`phn.profiles` profile and the fields set apart from it.
        batch_size: training batch size (paper: 64). The offline default is 16: on a CPU an update
            costs about the same per image at any batch size, and four times as many Adam steps in
            the same time let the hypernetwork, which moves slowly at the authors' initialisation,
            learn something in a short run.
    """

    section: ClassVar[str] = "freeze"

    pairs: tuple[str, ...] = ("fashionmnist->fashionmnist", "digits->fashionmnist", "fashionmnist->digits")
    depths: tuple[int, ...] = (0, 1, 2, 3, 4)
    strategies: tuple[str, ...] = ("lr", "hn")
    seeds: tuple[int, ...] = (0, 1)
    classes_per_experience: int = 5
    max_per_class: int | None = 50
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

    @property
    def datasets(self) -> tuple[str, ...]:
        """The datasets the pairs read."""
        return tuple(dict.fromkeys(name for pair in self.pairs for name in pair.split("->")))

    def smoke_sized(self) -> FreezeConfig:
        """Under the test suite (``PHN_SMOKE=1``): the first pair, depths 0 and 4, one seed, 20 images per
        class, 1 epoch; otherwise unchanged."""
        if not smoke_enabled():
            return self
        return dataclasses.replace(self, pairs=self.pairs[:1], depths=tuple(sorted({min(self.depths), max(self.depths)})),
                                   seeds=self.seeds[:1], max_per_class=min(self.max_per_class or 20, 20), epochs=1)

    def run_config(self, pair: str, strategy: str, depth: int, seed: int) -> RunConfig:
        """The configuration of one run of the grid."""
        strategy_cfg: dict[str, Any] = {"name": strategy}
        if strategy == "lr":
            strategy_cfg.update(replay_coef=0.0, buffer_size=0)
        return from_dict(RunConfig, {
            "stream": {"name": f"cross:{pair}", "seed": seed, "classes_per_experience": self.classes_per_experience,
                       "max_per_class": self.max_per_class},
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


@dataclass(frozen=True)
class FreezeVerdict:
    """One strategy's reading of Section 4.1's claims (:func:`freeze_verdicts`).

    Attributes:
        strategy: ``"lr"`` or ``"hn"``.
        learned: False when its accuracy on experience 2 averages less than 10 points above chance
            (then the claims are not judged and the fields below are None / empty).
        mean_accuracy: its accuracy on experience 2 averaged over the grid (percent).
        k_low, k_high: the shallowest and deepest freeze depth of the grid.
        similar_drop, different_drop: accuracy lost from ``k_low`` to ``k_high``, similar pair and mean
            of the different pairs (points); None when the grid lacks one kind of pair.
        different_drops: pair -> drop, for the different pairs.
        claim1: similar_drop < different_drop (None when not judged).
        claim2: (simpler pair, its drop, harder pair, its drop, holds) for each pair of datasets
            run in both directions.
    """

    strategy: str
    learned: bool
    mean_accuracy: float
    k_low: int
    k_high: int
    similar_drop: float | None = None
    different_drop: float | None = None
    different_drops: tuple[tuple[str, float], ...] = ()
    claim1: bool | None = None
    claim2: tuple[tuple[str, float, float, str, float, bool], ...] = ()


def freeze_verdicts(claims: pd.DataFrame, summary: pd.DataFrame | None = None,
                    chance: float | None = None) -> list[FreezeVerdict]:
    """Section 4.1's two claims decided per strategy from :func:`freeze_claims`:

    1. freezing costs less accuracy on experience 2 when both experiences come from one dataset
       (similar) than when they come from different datasets;
    2. between the two directions of a pair of datasets, freezing hurts less when the second task is
       the simpler one, taken here as the one that reaches the higher accuracy with nothing frozen
       (the lowest depth of the grid).

    With ``summary`` (:func:`freeze_summary`) and ``chance`` (100 / classes per experience, percent), a
    strategy whose accuracy on experience 2 averages less than 10 points above chance is marked as not
    having learned, and not judged.
    """
    verdicts = []
    for strategy, group in claims.groupby("strategy", sort=False):
        k_low, k_high = int(group.k_low.iloc[0]), int(group.k_high.iloc[0])
        mean = (summary[summary.strategy == strategy]["mean"].mean() if summary is not None
                else float(group[["acc_low", "acc_high"]].to_numpy().mean()))
        if chance is not None and mean < chance + 10:
            verdicts.append(FreezeVerdict(strategy, False, mean, k_low, k_high))
            continue
        similar, different = group[group.similar], group[~group.similar]
        if similar.empty or different.empty:
            verdicts.append(FreezeVerdict(strategy, True, mean, k_low, k_high))
            continue
        s_drop, d_drop = float(similar.accuracy_drop.mean()), float(different.accuracy_drop.mean())
        by_pair = {row.pair: row for row in different.itertuples()}
        claim2 = []
        for pair, row in by_pair.items():
            first, _, second = pair.partition("->")
            reverse = by_pair.get(f"{second}->{first}")
            if reverse is None or first > second:
                continue
            simpler, harder = (row, reverse) if row.acc_low >= reverse.acc_low else (reverse, row)
            claim2.append((simpler.pair, float(simpler.acc_low), float(simpler.accuracy_drop), harder.pair,
                           float(harder.accuracy_drop), bool(simpler.accuracy_drop < harder.accuracy_drop)))
        verdicts.append(FreezeVerdict(strategy, True, mean, k_low, k_high, s_drop, d_drop,
                                      tuple((p, float(r.accuracy_drop)) for p, r in by_pair.items()),
                                      s_drop < d_drop, tuple(claim2)))
    return verdicts


def freeze_conclusion(claims: pd.DataFrame, summary: pd.DataFrame | None = None, chance: float | None = None) -> str:
    """:func:`freeze_verdicts` in words (Markdown), one item per strategy."""
    lines = []
    for v in freeze_verdicts(claims, summary, chance):
        label = STRATEGY_LABELS.get(v.strategy, v.strategy)
        if not v.learned:
            lines.append(f"- **{label}** did not learn experience 2 at this size: {v.mean_accuracy:.1f} % on average over "
                         f"the grid, where guessing gives {chance:.0f} %. Its numbers say nothing about the claims; "
                         "it needs longer runs (more epochs or images).")
            continue
        if v.claim1 is None:
            lines.append(f"- {label}: the grid needs a similar and a different pair to test claim 1.")
            continue
        pairs = ", ".join(f"{p} {d:.1f}" for p, d in v.different_drops)
        lines.append(f"- **{label}**: freezing k = {v.k_high} instead of k = {v.k_low} costs {v.similar_drop:.1f} points "
                     f"on the similar pair and {v.different_drop:.1f} on average on the different pairs ({pairs}): "
                     f"claim 1 {'holds' if v.claim1 else 'does not hold'} here.")
        for simpler, acc_low, s_drop, harder, h_drop, holds in v.claim2:
            lines.append(f"  Second task simpler ({simpler}, {acc_low:.1f} % at k = {v.k_low}): drop "
                         f"{s_drop:.1f} vs {h_drop:.1f} for {harder}: claim 2 {'holds' if holds else 'does not hold'} here.")
    return "\n".join(lines)


def freeze_findings(verdicts: list[FreezeVerdict], configuration: str) -> list[Finding]:
    """The ledger's findings for claims ``4.1-similar`` and ``4.1-simpler-second`` (one per claim,
    every strategy's numbers in it). Verdict: ``holds qualitatively`` when the claim holds for every
    strategy that learned (the datasets are not the paper's), ``does not hold at this scale`` when it
    holds for none, ``inconclusive`` when strategies disagree or none learned."""
    findings = []
    for claim in ("4.1-similar", "4.1-simpler-second"):
        parts, outcomes = [], []
        for v in verdicts:
            label = STRATEGY_LABELS.get(v.strategy, v.strategy)
            if not v.learned:
                parts.append(f"{label} did not learn experience 2 ({v.mean_accuracy:.1f} %)")
            elif claim == "4.1-similar" and v.claim1 is not None:
                outcomes.append(v.claim1)
                parts.append(f"{label}: k = {v.k_low} → {v.k_high} costs {v.similar_drop:.1f} points on the similar "
                             f"pair, {v.different_drop:.1f} on the different pairs")
            elif claim == "4.1-simpler-second":
                for simpler, _, s_drop, harder, h_drop, holds in v.claim2:
                    outcomes.append(holds)
                    parts.append(f"{label}: {simpler} (simpler second task) loses {s_drop:.1f} points, "
                                 f"{harder} {h_drop:.1f}")
        # the datasets are never the paper's pairs here: at best "holds qualitatively"
        findings.append(Finding(claim, "; ".join(parts) + ".", verdict_from(outcomes, paper_setting=False),
                                configuration))
    return findings


__all__ = [
    "STRATEGY_LABELS", "FreezeConfig", "FreezeVerdict", "freeze_claims", "freeze_conclusion", "freeze_findings",
    "freeze_summary", "freeze_table", "freeze_verdicts", "run_freeze",
]
