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
from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from phn.config import ConfigError, RunConfig, from_dict
from phn.data import DATASETS, SPLIT_DEFAULTS
from phn.experiments.convergence import half_length
from phn.ledger import Finding, judge, unconverged
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
        max_per_class_test: test images per class, apart from ``max_per_class`` (None: as
            ``max_per_class``; ``"all"``: the whole test set).
        epochs: epochs per experience.
        buffer_size: latent replay buffer (paper: 200, 0.4 % of CIFAR-100's training images; the
            offline profiles keep 2 % of the stream's, the share of the paper's benchmark buffers
            that Section 4.2 does not state: an inference).
        eval_every: steps between evaluations of the seen experiences during training (Figure 7; 0:
            none, as the chapter's convergence study runs).
        batch_size: training batch size (paper: 64; profile ``cpu``: 32, for the reason given in
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
    max_per_class_test: int | Literal["all"] | None = None
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
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"NoiseConfig.{name} must be positive, got {getattr(self, name)}")
        if self.eval_every < 0:
            raise ConfigError(f"NoiseConfig.eval_every must be >= 0 (0: no curves), got {self.eval_every}")
        for name in ("classes_per_experience", "max_per_class"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"NoiseConfig.{name} must be positive or None, got {value}")
        if self.buffer_size < 0:
            raise ConfigError(f"NoiseConfig.buffer_size must be >= 0, got {self.buffer_size}")
        self.check_test_size()

    @property
    def datasets(self) -> tuple[str, ...]:
        """The dataset the stream reads."""
        return (self.dataset,)

    @property
    def chance(self) -> float:
        """Chance accuracy of one experience (percent): 100 / classes per experience."""
        return 100 / (self.classes_per_experience or SPLIT_DEFAULTS[self.dataset][1])

    def half_length(self) -> NoiseConfig:
        """The chapter's convergence check: the first seed with half the epochs
        (:func:`phn.experiments.convergence.half_length_check`)."""
        return dataclasses.replace(self, seeds=self.seeds[:1], epochs=half_length(self.epochs))

    @property
    def all_depths(self) -> tuple[int, ...]:
        """``depths`` plus ``freeze_depth``, sorted."""
        return tuple(sorted({*self.depths, self.freeze_depth}))

    def run_config(self, stream: str, strategy: str, depth: int, seed: int) -> RunConfig:
        """One run: ``stream`` is ``"normal"`` or ``"noisy"``, ``strategy`` ``"lr"`` (c = 1) or ``"hn"``."""
        strategy_cfg = {"name": strategy, "buffer_size": self.buffer_size, "replay_coef": 1.0}
        return from_dict(RunConfig, {
            "stream": {"name": f"noisy-{self.dataset}", "seed": seed, "corrupt": stream == "noisy",
                       "classes_per_experience": self.classes_per_experience, "max_per_class": self.max_per_class,
                       "max_per_class_test": self.max_per_class_test},
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


def noise_drops(results: dict[RunKey, Results]) -> pd.DataFrame:
    """:func:`noisy_drop` per seed: one row per (strategy, model, depth, seed) with final_e1_normal,
    final_e1_noisy and noise_drop (points): the seed-paired numbers the rule compares."""
    rows = [{"strategy": strategy, "model": _label(strategy, depth), "depth": depth, "stream": stream, "seed": seed,
             "final_e1": 100 * res.acc[-1, 0]} for (stream, strategy, depth, seed), res in results.items()]
    wide = pd.DataFrame(rows).pivot_table(index=["strategy", "model", "depth", "seed"], columns="stream",
                                          values="final_e1", sort=False)
    wide = wide.reset_index().rename(columns={"normal": "final_e1_normal", "noisy": "final_e1_noisy"})
    wide["noise_drop"] = wide["final_e1_normal"] - wide["final_e1_noisy"]
    return wide


def learning_by_run(results: dict[RunKey, Results]) -> pd.DataFrame:
    """Mean learning accuracy over a run's experiences (percent) and train time (s), one row per (model,
    stream, seed):
    what the chapter's convergence check compares (:func:`phn.experiments.convergence.half_length_check`)."""
    return pd.DataFrame([{"model": _label(strategy, depth), "stream": stream, "seed": seed,
                          "learning_accuracy": 100 * float(np.mean(np.diag(res.acc))),
                          "train_time_s": float(res.train_time.sum())}
                         for (stream, strategy, depth, seed), res in results.items()])


FILTERS_DIFFERENT = 0.5  # relative difference at or above which two experiences' filters count as "mostly different"
FILTERS_SAME = 0.1  # below which they count as the same filters


def noise_findings(results: dict[RunKey, Results], filters: Mapping[int, GeneratedFilters | None],
                   configuration: str, paper_setting: bool = False, converged: Mapping[str, bool] | None = None,
                   below_chance: Sequence[str] = (), margin: float = 1.0, filter_model: str = "HN-2") -> list[Finding]:
    """The ledger's findings for claims ``4.2-noise`` and ``4.2-filters``, by the ledger's rule.

    - ``4.2-noise``: at each freeze depth, the noise costs experience 1 more under LR-k (c = 1) than
      under HN-k, seed-paired, beyond ``margin`` points (:func:`phn.ledger.judge`).
    - ``4.2-filters``: on every seed the filters HN-k generates for experiences 2 and 3 differ by at
      least :data:`FILTERS_DIFFERENT` of their norm (a picture, not a number, in the paper): holds
      (qualitatively outside the paper's setting); below :data:`FILTERS_SAME` on every seed: does not
      hold; else inconclusive. No finding when no conv is generated.

    Args:
        results: :func:`run_noise`'s.
        filters: seed -> :func:`generated_filters` of the noisy HN run at the filter depth.
        converged: model -> converged at this profile (the chapter's check); a model marked False
            leaves the claims resting on it not judged.
        below_chance: models that did not learn clearly above chance (not judged either).
        margin: points a difference of drops must exceed.
        filter_model: the model whose filters ``filters`` holds (HN at the filter depth).
    """
    drops = noise_drops(results)
    depths = [d for d in sorted(set(drops.depth)) if {"lr", "hn"} <= set(drops[drops.depth == d].strategy)]
    labels = [_label(s, d) for d in depths for s in ("lr", "hn")]
    findings = []
    if depths:
        findings.append(judge(
            "4.2-noise", [(_label("lr", d), _label("hn", d), "noise_drop", "greater") for d in depths], drops,
            "experience 1's drop under noise (normal minus noisy final accuracy), LR-k minus HN-k (points; counts "
            f"beyond {margin:g}), 95 % interval over seeds", configuration, paper_setting, key="model", margin=margin,
            not_converged=unconverged(labels, converged), below_chance=[x for x in below_chance if x in labels]))
    shown = {seed: f for seed, f in filters.items() if f is not None}
    if shown:
        first = next(iter(shown.values()))
        diffs = {seed: f.relative_difference for seed, f in shown.items()}
        model = filter_model
        skipped = unconverged([model], converged) + [x for x in below_chance if x == model]
        if skipped:
            verdict = "inconclusive"
        elif all(d >= FILTERS_DIFFERENT for d in diffs.values()):
            verdict = "holds" if paper_setting else "holds qualitatively"
        elif all(d < FILTERS_SAME for d in diffs.values()):
            verdict = "does not hold at this scale"
        else:
            verdict = "inconclusive"
        text = (f"{first.layer}: experiences 2 and 3 differ by " + ", ".join(
            f"{100 * d:.1f} % (seed {seed})" for seed, d in diffs.items()) + " of the filters' norm; 'mostly "
            f"different' is taken as ≥ {100 * FILTERS_DIFFERENT:.0f} % on every seed")
        if skipped:
            text += f" (not judged: {', '.join(skipped)} not shown to converge or not clearly above chance)"
        findings.append(Finding("4.2-filters", text + ".", verdict, configuration))
    return findings


__all__ = [
    "FILTERS_DIFFERENT", "FILTERS_SAME", "learning_by_run", "noise_drops", "noise_findings",
    "STRATEGIES", "STREAMS", "GeneratedFilters", "NoiseConfig", "first_experience_curves", "generated_filters",
    "learning_table", "noisy_drop", "run_directory", "run_noise",
]
