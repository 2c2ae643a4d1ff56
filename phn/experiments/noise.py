"""Section 4.2: robustness to a noisy stream (Table 1, Figures 5, 6 and 7).

The noisy stream (:func:`phn.data.noisy_stream`) corrupts experience t with corruption t (clean,
solarize, blur, autocontrast + grey + blur); its "normal" twin has the same classes in the same order
and no corruption, so experience 1 is identical in both: it is trained once per (strategy, depth,
seed), on the normal stream, and the noisy run continues from that checkpoint
(:func:`phn.train.run`'s ``start_from``).

For each freeze depth k, latent replay LR-k (c = 1, buffer ``buffer_size``) and the partial
hypernetwork HN-k learn both streams while the accuracy of every seen experience is measured during
training (``TrainConfig.eval_every``). From the runs:

- :func:`learning_table` (Table 1): learning accuracy of each experience, mean ± std over seeds;
- :func:`first_experience_curves` (Figure 7): experience 1's accuracy and forgetting over time;
- :func:`generated_filters` (Figure 6): the filters HN-k generates for experiences 2 and 3 in the first
  generated stage, and how alike they are.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from phn.config import ConfigError, RunConfig, from_dict, smoke_enabled
from phn.data import DATASETS
from phn.ledger import Finding, verdict_from
from phn.profiles import Profiled
from phn.results import Results
from phn.train import kept_checkpoint, load_strategy, run_config, run_dir_for

STREAMS = ("normal", "noisy")
STRATEGIES = ("lr", "hn")


@dataclass(frozen=True)
class NoiseConfig(Profiled):
    """The noisy-stream experiment (Section 4.2). Every field is a notebook parameter.

    Attributes:
        dataset: base dataset of the stream (offline default fashionmnist; the paper: cifar100).
        freeze_depth: the depth whose generated filters Figure 6 shows (paper: 2).
        depths: freeze depths of Table 1 and Figure 7 (paper: 2, 3, 4); ``freeze_depth`` is added.
        seeds: one run per seed (model init and class order, as the paper's three class orderings).
        classes_per_experience: classes per experience (None: the stream's default, 2 for
            FashionMNIST, 5 for CIFAR-100 as in the paper).
        max_per_class: first N training and test images per class (None: all).
        epochs: epochs per experience.
        buffer_size: latent replay buffer (paper: 200).
        eval_every: steps between evaluations of the seen experiences during training (Figure 7).
        batch_size: training batch size (paper: 64; offline default 16, for the reason given in
            :class:`phn.experiments.freeze.FreezeConfig`).
        profile, overridden: the :mod:`phn.profiles` profile and the fields set apart from it.
    """

    section: ClassVar[str] = "noise"

    dataset: str = "fashionmnist"
    freeze_depth: int = 2
    depths: tuple[int, ...] = (2, 3, 4)
    seeds: tuple[int, ...] = (0, 1)
    classes_per_experience: int | None = None
    max_per_class: int | None = 120
    epochs: int = 2
    buffer_size: int = 200
    eval_every: int = 10
    batch_size: int = 16
    profile: str = "cpu"
    overridden: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.check_profile()
        if self.dataset not in DATASETS:
            raise ConfigError(f"NoiseConfig.dataset must be one of {sorted(DATASETS)}, got {self.dataset!r}")
        if not 0 <= self.freeze_depth <= 4:
            raise ConfigError(f"NoiseConfig.freeze_depth must be in 0..4, got {self.freeze_depth}")
        if not self.depths or any(not 0 <= k <= 4 for k in self.depths):
            raise ConfigError(f"NoiseConfig.depths must be freeze depths in 0..4, got {list(self.depths)}")
        if not self.seeds:
            raise ConfigError("NoiseConfig.seeds must not be empty")
        for name in ("epochs", "eval_every", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"NoiseConfig.{name} must be positive, got {getattr(self, name)}")
        for name in ("classes_per_experience", "max_per_class"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"NoiseConfig.{name} must be positive or None, got {value}")
        if self.buffer_size < 0:
            raise ConfigError(f"NoiseConfig.buffer_size must be >= 0, got {self.buffer_size}")

    @property
    def datasets(self) -> tuple[str, ...]:
        """The dataset the stream reads."""
        return (self.dataset,)

    @property
    def all_depths(self) -> tuple[int, ...]:
        """``depths`` plus ``freeze_depth``, sorted."""
        return tuple(sorted({*self.depths, self.freeze_depth}))

    def smoke_sized(self) -> NoiseConfig:
        """Under the test suite (``PHN_SMOKE=1``): only ``freeze_depth``, one seed, 20 images per class,
        1 epoch; otherwise unchanged."""
        if not smoke_enabled():
            return self
        return dataclasses.replace(self, depths=(self.freeze_depth,), seeds=self.seeds[:1],
                                   max_per_class=min(self.max_per_class or 20, 20), epochs=1, eval_every=2)

    def run_config(self, stream: str, strategy: str, depth: int, seed: int) -> RunConfig:
        """One run: ``stream`` is ``"normal"`` or ``"noisy"``, ``strategy`` ``"lr"`` (c = 1) or ``"hn"``."""
        strategy_cfg = {"name": strategy, "buffer_size": self.buffer_size, "replay_coef": 1.0}
        return from_dict(RunConfig, {
            "stream": {"name": f"noisy-{self.dataset}", "seed": seed, "corrupt": stream == "noisy",
                       "classes_per_experience": self.classes_per_experience, "max_per_class": self.max_per_class},
            "strategy": strategy_cfg, "model": {"freeze_depth": depth},
            "train": {"epochs": self.epochs, "batch_size": self.batch_size, "seed": seed,
                      "eval_every": self.eval_every},
        })


RunKey = tuple[str, str, int, int]  # (stream, strategy, depth, seed)


def run_noise(cfg: NoiseConfig, root: str | os.PathLike | None = None,
              progress: bool | None = None) -> dict[RunKey, Results]:
    """Train every (strategy, depth, seed) on the normal stream, then on the noisy one from the
    normal run's checkpoint after experience 1. Run directories are cached under ``root``.

    Returns:
        Results by (stream, strategy, depth, seed); each holds ``curves`` (accuracy over time) and
        ``config["run_dir"]`` is not set: use :func:`run_directory` for the directory of a key.
    """
    grid = [(strategy, depth, seed) for strategy in STRATEGIES for depth in cfg.all_depths for seed in cfg.seeds]
    results: dict[RunKey, Results] = {}
    bar = tqdm(total=2 * len(grid), desc="noise runs", disable=progress is False, dynamic_ncols=True)
    for strategy, depth, seed in grid:
        normal_cfg = cfg.run_config("normal", strategy, depth, seed)
        normal_dir = run_dir_for(normal_cfg, root)
        bar.set_postfix_str(f"{normal_cfg.label} seed {seed} normal")
        results["normal", strategy, depth, seed] = run_config(
            normal_cfg, resume=True, out_dir=normal_dir, progress=progress, keep_checkpoints=(0,))
        bar.update()
        noisy_cfg = cfg.run_config("noisy", strategy, depth, seed)
        source = normal_dir / kept_checkpoint(0)
        bar.set_postfix_str(f"{normal_cfg.label} seed {seed} noisy")
        results["noisy", strategy, depth, seed] = run_config(
            noisy_cfg, resume=True, out_dir=run_dir_for(noisy_cfg, root), progress=progress,
            start_from=source if source.exists() else None)
        bar.update()
    bar.close()
    return results


def run_directory(cfg: NoiseConfig, key: RunKey, root: str | os.PathLike | None = None) -> os.PathLike:
    """The run directory of one run of the grid."""
    return run_dir_for(cfg.run_config(*key), root)


def _label(strategy: str, depth: int) -> str:
    return ("HN-F" if depth == 0 else f"HN-{depth}") if strategy == "hn" else f"LR-{depth}"


def learning_table(results: dict[RunKey, Results]) -> pd.DataFrame:
    """Table 1: learning accuracy (percent) of each experience, mean ± std over seeds, one row per
    (model, stream); columns ``e1`` .. ``eN`` hold "mean ± std" text, ``mean_e*`` the numbers."""
    rows = []
    for (stream, strategy, depth, seed), res in results.items():
        diagonal = 100 * np.diag(res.acc)
        rows.append({"model": _label(strategy, depth), "strategy": strategy, "depth": depth, "stream": stream,
                     "seed": seed, **{f"e{i + 1}": v for i, v in enumerate(diagonal)}})
    long = pd.DataFrame(rows)
    experiences = [c for c in long.columns if c.startswith("e") and c[1:].isdigit()]
    out = []
    for (strategy, depth, model, stream), group in long.groupby(["strategy", "depth", "model", "stream"], sort=False):
        row = {"model": model, "stream": stream, "seeds": len(group)}
        for e in experiences:
            values = group[e]
            std = values.std(ddof=1) if len(values) > 1 else 0.0
            row[e] = f"{values.mean():.1f} ± {std:.1f}"
            row[f"mean_{e}"] = values.mean()
        out.append(row)
    table = pd.DataFrame(out)
    order = {s: i for i, s in enumerate(STREAMS)}
    return table.sort_values(["model", "stream"], key=lambda c: c.map(order) if c.name == "stream" else c,
                             kind="stable").reset_index(drop=True)


def first_experience_curves(results: dict[RunKey, Results]) -> pd.DataFrame:
    """Figure 7: experience 1's test accuracy over training time in every run.

    One row per (run, evaluation): ``stream``, ``strategy``, ``model``, ``depth``, ``seed``,
    ``global_step``, ``trained_experience``, ``accuracy`` (percent) and ``forgetting`` (percent
    points below experience 1's accuracy at the end of experience 1).
    """
    frames = []
    for (stream, strategy, depth, seed), res in results.items():
        curves = res.curves
        if curves.empty:
            continue
        first = curves[curves.evaluated_experience == 0].copy()
        learned = 100 * res.acc[0, 0]
        first["accuracy"] = 100 * first["accuracy"]
        first["forgetting"] = learned - first["accuracy"]
        first.loc[first.trained_experience == 0, "forgetting"] = np.nan  # still learning it
        frames.append(first.assign(stream=stream, strategy=strategy, model=_label(strategy, depth), depth=depth,
                                   seed=seed))
    columns = ["stream", "strategy", "model", "depth", "seed", "global_step", "trained_experience", "accuracy",
               "forgetting"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def noisy_drop(results: dict[RunKey, Results]) -> pd.DataFrame:
    """The claim of Section 4.2 in numbers: experience 1's final accuracy on the normal and the noisy
    stream, and the drop the noise causes (points), per (strategy, depth), mean over seeds."""
    rows = [{"strategy": strategy, "model": _label(strategy, depth), "depth": depth, "stream": stream, "seed": seed,
             "final_e1": 100 * res.acc[-1, 0], "learned_e1": 100 * res.acc[0, 0]}
            for (stream, strategy, depth, seed), res in results.items()]
    long = pd.DataFrame(rows)
    wide = long.pivot_table(index=["strategy", "model", "depth"], columns="stream", values="final_e1", sort=False)
    wide = wide.reset_index().rename(columns={"normal": "final_e1_normal", "noisy": "final_e1_noisy"})
    wide["noise_drop"] = wide["final_e1_normal"] - wide["final_e1_noisy"]
    return wide


@dataclass
class GeneratedFilters:
    """Figure 6: filters of one generated conv layer for two experiences.

    Attributes:
        layer: the target tensor's name, e.g. ``stage3.0.conv1.weight``.
        filters: {experience number (1-based): tensor (C_out, C_in, 3, 3)}.
        cosine: mean over output channels of the cosine similarity of matching filters (flattened
            C_in x 3 x 3) between the two experiences; 1 means the same filters (LR shares them).
        relative_difference: ||W_a - W_b|| / ||W_a|| over the whole layer (0 for shared filters).
    """

    layer: str
    filters: dict[int, torch.Tensor]
    cosine: float
    relative_difference: float


def generated_filters(run_dir: str | os.PathLike, experiences: tuple[int, int] = (2, 3)) -> GeneratedFilters | None:
    """The filters HN-k generates in the first conv of the first generated stage (stage k + 1) for two
    experiences (1-based), from the run's final hypernetwork; None when nothing convolutional is
    generated (k = 4: only the classifier)."""
    strategy = load_strategy(run_dir)
    hnet = strategy.hnet
    convs = [name for name, shape in hnet.param_shapes.items() if len(shape) == 4 and not name.startswith("stem")]
    if not convs:
        return None
    layer = convs[0]
    with torch.no_grad():
        filters = {e: hnet.task_weights(e - 1)[layer].cpu() for e in experiences}
    a, b = (filters[e].flatten(1) for e in experiences)
    cosine = float(torch.nn.functional.cosine_similarity(a, b, dim=1).mean())
    return GeneratedFilters(layer, filters, cosine, float((a - b).norm() / a.norm()))


@dataclass(frozen=True)
class NoiseVerdict:
    """Section 4.2's claim at one freeze depth (:func:`noise_verdicts`): experience 1's final accuracy
    on the normal and the noisy stream under LR and HN, and whether LR loses more to the noise.

    Attributes:
        depth: freeze depth k.
        lr, hn: rows of :func:`noisy_drop` for LR-k and HN-k.
        difference: LR's drop minus HN's (points).
        outcome: ``"LR drops more"``, ``"no difference"`` (within the tolerance) or ``"HN drops more"``.
    """

    depth: int
    lr: pd.Series
    hn: pd.Series
    difference: float
    outcome: str


def noise_verdicts(drop: pd.DataFrame, tolerance: float = 1.0) -> list[NoiseVerdict]:
    """One :class:`NoiseVerdict` per freeze depth that has both LR and HN runs. LR "drops more" only by
    more than ``tolerance`` points; smaller differences are reported as none."""
    verdicts = []
    for depth in sorted(set(drop.depth)):
        rows = drop[drop.depth == depth].set_index("strategy")
        if not {"lr", "hn"} <= set(rows.index):
            continue
        lr, hn = rows.loc["lr"], rows.loc["hn"]
        difference = float(lr.noise_drop - hn.noise_drop)
        outcome = ("LR drops more" if difference > tolerance else "no difference" if abs(difference) <= tolerance
                   else "HN drops more")
        verdicts.append(NoiseVerdict(int(depth), lr, hn, difference, outcome))
    return verdicts


def weak_learners(learning: pd.DataFrame, chance: float) -> list[str]:
    """Models whose learning accuracy on experiences 2.. (:func:`learning_table`, averaged over both
    streams) is within 10 points of ``chance``, as "HN-2 (51.0 %)"."""
    later = [c for c in learning.columns if c.startswith("mean_e") and c != "mean_e1"]
    means = learning.groupby("model", sort=False)[later].mean().mean(axis=1)
    return [f"{model} ({value:.1f} %)" for model, value in means.items() if value < chance + 10]


def noise_conclusion(drop: pd.DataFrame, learning: pd.DataFrame | None = None, chance: float | None = None,
                     tolerance: float = 1.0) -> str:
    """Section 4.2's claim, decided from :func:`noisy_drop` (Markdown): at each freeze depth, does the
    noise lower experience 1's final accuracy more under latent replay (c = 1) than under the partial
    hypernetwork (:func:`noise_verdicts`)? With ``learning`` (:func:`learning_table`) and ``chance``
    (percent), models whose learning accuracy on experiences 2.. averages less than 10 points above
    chance are named: for them "keeps experience 1" means little, as they hardly learned anything after it."""
    verdicts = noise_verdicts(drop, tolerance)
    held = sum(v.outcome == "LR drops more" for v in verdicts)
    lines = [f"The paper's claim (LR's first experience suffers more from the noisy stream than HN's) holds at "
             f"{held} of {len(verdicts)} freeze depths here."]
    for v in verdicts:
        outcome = f"no difference beyond {tolerance:g} point" if v.outcome == "no difference" else v.outcome
        lines.append(f"- k = {v.depth}: the noise costs experience 1 {v.lr.noise_drop:.1f} points under {v.lr.model} "
                     f"({v.lr.final_e1_normal:.1f} → {v.lr.final_e1_noisy:.1f} %) and {v.hn.noise_drop:.1f} under "
                     f"{v.hn.model} ({v.hn.final_e1_normal:.1f} → {v.hn.final_e1_noisy:.1f} %): {outcome}.")
    weak = weak_learners(learning, chance) if learning is not None and chance is not None else []
    if weak:
        lines.append(f"- Learning accuracy on experiences 2 and later, averaged over both streams, is within 10 "
                     f"points of guessing ({chance:.0f} %) for {', '.join(weak)}: at this size they hardly learn "
                     "the later experiences, which a longer run would change.")
    return "\n".join(lines)


FILTERS_DIFFERENT = 0.5  # relative difference at or above which two experiences' filters count as "mostly different"
FILTERS_SAME = 0.1  # below which they count as the same filters


def noise_findings(drop: pd.DataFrame, filters: GeneratedFilters | None, configuration: str,
                   learning: pd.DataFrame | None = None, chance: float | None = None,
                   tolerance: float = 1.0) -> list[Finding]:
    """The ledger's findings for claims ``4.2-noise`` and ``4.2-filters``.

    ``4.2-noise``: ``holds qualitatively`` when LR drops more at every depth, ``does not hold at this
    scale`` when at none, else ``inconclusive``. ``4.2-filters``: the relative difference of the
    filters of experiences 2 and 3 at or above :data:`FILTERS_DIFFERENT` holds qualitatively (a
    picture, not a number, in the paper), below :data:`FILTERS_SAME` does not hold, between is
    inconclusive; no finding when no conv is generated."""
    verdicts = noise_verdicts(drop, tolerance)
    held = sum(v.outcome == "LR drops more" for v in verdicts)
    parts = [f"k = {v.depth}: noise costs experience 1 {v.lr.noise_drop:.1f} points under {v.lr.model}, "
             f"{v.hn.noise_drop:.1f} under {v.hn.model}" for v in verdicts]
    weak = weak_learners(learning, chance) if learning is not None and chance is not None else []
    ours = f"LR drops more (by over {tolerance:g} point) at {held} of {len(verdicts)} depths; " + "; ".join(parts) + "."
    if weak:
        ours += f" Hardly learn experiences 2..: {', '.join(weak)}."
    outcomes = [v.outcome == "LR drops more" for v in verdicts]
    findings = [Finding("4.2-noise", ours, verdict_from(outcomes, paper_setting=False), configuration)]
    if filters is not None:
        diff = filters.relative_difference
        verdict = ("holds qualitatively" if diff >= FILTERS_DIFFERENT else "does not hold at this scale"
                   if diff < FILTERS_SAME else "inconclusive")
        findings.append(Finding("4.2-filters", f"{filters.layer}: experiences 2 and 3 differ by {100 * diff:.1f} % of "
                                f"the filters' norm (mean cosine {filters.cosine:.3f}); 'mostly different' is taken "
                                f"as ≥ {100 * FILTERS_DIFFERENT:.0f} %.", verdict, configuration))
    return findings


__all__ = [
    "FILTERS_DIFFERENT", "FILTERS_SAME", "NoiseVerdict", "noise_findings", "noise_verdicts", "weak_learners",
    "STRATEGIES", "STREAMS", "noise_conclusion", "GeneratedFilters", "NoiseConfig", "first_experience_curves", "generated_filters",
    "learning_table", "noisy_drop", "run_directory", "run_noise",
]
