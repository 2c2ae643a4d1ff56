"""Section 4.3: every strategy on one split stream (Table 2), memory (Table 6), stability (Figure 8).

- :func:`run_benchmarks` trains each strategy of :data:`TABLE2_STRATEGIES` (Naive, EWC, LR-1..4,
  HN-1..4, HN-F) once per seed on one stream (cached run directories), plus LR-k with c = 0 at the
  Figure 8 depth (``curve_without_replay``). The runs at that depth (LR-k with c = 0 and c = 1, HN-k)
  also evaluate the seen experiences every ``eval_every`` steps (``curves.csv``).
- :func:`benchmark_table`: Table 2, mean ± std over seeds, with the paper's numbers beside ours when
  the stream is the paper's (:func:`phn.reference.paper_table2`).
- :func:`memory_table`: Table 6 computed from built objects (hypernetworks, and the frozen prefix run
  on an input of the stream's size), for any configuration.
- :func:`experience_curves`: Figure 8's accuracy of experiences 1..3 over training time.
- :func:`benchmark_findings`: the ledger's verdicts.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import torch

from phn.config import ConfigError, HyperConfig, RunConfig, from_dict
from phn.data.stream_registry import SPLIT_DEFAULTS, parse_stream_name
from phn.ledger import Finding, judge, unconverged
from phn.profiles import Profiled
from phn.reference import PAPER_TABLE6_HN, PAPER_TABLE6_LR_MB, paper_table2
from phn.results import Results

TABLE2_STRATEGIES = ("Naive", "EWC", "LR-1", "LR-2", "LR-3", "LR-4", "HN-1", "HN-2", "HN-3", "HN-4", "HN-F")
PAPER_STREAMS = ("split-cifar100", "split-tinyimagenet")
_LABEL = re.compile(r"^(Naive|EWC|LR-[0-4]|HN-[1-4F])$")


def strategy_sections(label: str, buffer_size: int = 200, replay_coef: float = 1.0) -> dict[str, dict[str, Any]]:
    """Config sections for a paper label: ``"Naive"``, ``"EWC"``, ``"LR-k"`` (k = 0..4; c =
    ``replay_coef``, no buffer when c = 0), ``"HN-k"`` (k = 1..4) or ``"HN-F"``.

    Example:
        >>> strategy_sections("HN-F")
        {'strategy': {'name': 'hn'}, 'model': {'freeze_depth': 0}}
    """
    if not _LABEL.match(label):
        raise ConfigError(f"unknown strategy label {label!r}; expected Naive, EWC, LR-0..LR-4, HN-1..HN-4 or HN-F")
    if label in ("Naive", "EWC"):
        return {"strategy": {"name": label.lower()}}
    name, depth = label.split("-")
    if name == "HN":
        return {"strategy": {"name": "hn"}, "model": {"freeze_depth": 0 if depth == "F" else int(depth)}}
    return {"strategy": {"name": "lr", "replay_coef": replay_coef, "buffer_size": buffer_size if replay_coef else 0},
            "model": {"freeze_depth": int(depth)}}


@dataclass(frozen=True)
class StreamSizes(Profiled):
    """The stream and sizes that the benchmark, cosine and ablation notebooks share: with the same values
    their run configurations are the same, so each run is trained once (results cache). Every field is
    a notebook parameter.

    Attributes:
        stream: a split stream (offline default ``split-fashionmnist``, 5 x 2 classes; the paper:
            ``split-cifar100``, 20 x 5, and ``split-tinyimagenet``, 20 x 10).
        seeds: one run per seed (model init and class order).
        classes_per_experience: None: the stream's default.
        max_per_class: first N training and test images per class (None: all).
        max_per_class_test: test images per class, apart from ``max_per_class`` (None: as
            ``max_per_class``; ``"all"``: the whole test set).
        epochs: epochs per experience (paper: 100).
        batch_size: training batch size (paper: 64; profile ``cpu``: 32, the sizing study's, see
            :mod:`phn.experiments.convergence`).
        buffer_size: latent replay buffer (paper: 200 for CIFAR-100, 400 for TinyImageNet: 2 latents
            per class at the end of the stream). The offline default, 20, keeps the paper's 2 per
            class on a 10-class dataset; 200 would hold 17 % of this stream's training images where
            the paper's holds 0.4 % of CIFAR-100's, and LR then hardly forgets.
        curve_depth: freeze depth of Figure 8 (paper: 3): LR-k with c = 0 and c = 1 and HN-k there
            record accuracy over time.
        eval_every: steps between those evaluations.
        lr: Adam's learning rate (paper: 1e-3).
        profile: the :mod:`phn.profiles` profile these sizes come from (:func:`phn.profiles.configure`).
        overridden: the fields set apart from the profile (the chapter lists them).
    """

    section: ClassVar[str] = "benchmarks"  # the profiles' section of these sizes

    stream: str = "split-fashionmnist"
    seeds: tuple[int, ...] = (0, 1)
    classes_per_experience: int | None = None
    max_per_class: int | None = 120
    max_per_class_test: int | Literal["all"] | None = None
    epochs: int = 2
    batch_size: int = 16
    buffer_size: int = 20
    curve_depth: int = 3
    eval_every: int = 10
    lr: float = 1e-3
    profile: str = "cpu"
    overridden: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        name = type(self).__name__
        if not self.stream.startswith("split-"):
            raise ConfigError(f"{name}.stream must be a split stream (split-<dataset>), got {self.stream!r}")
        if not self.seeds:
            raise ConfigError(f"{name}.seeds must not be empty")
        if not 1 <= self.curve_depth <= 4:
            raise ConfigError(f"{name}.curve_depth must be in 1..4, got {self.curve_depth}")
        for field in ("epochs", "batch_size", "eval_every"):
            if getattr(self, field) < 1:
                raise ConfigError(f"{name}.{field} must be positive, got {getattr(self, field)}")
        for field in ("classes_per_experience", "max_per_class"):
            value = getattr(self, field)
            if value is not None and value < 1:
                raise ConfigError(f"{name}.{field} must be positive or None, got {value}")
        if self.buffer_size < 0:
            raise ConfigError(f"{name}.buffer_size must be >= 0, got {self.buffer_size}")
        self.check_test_size()
        if not (self.lr > 0 and np.isfinite(self.lr)):
            raise ConfigError(f"{name}.lr must be a finite positive number, got {self.lr}")
        self.check_profile()

    @property
    def datasets(self) -> tuple[str, ...]:
        """The datasets the stream reads."""
        return parse_stream_name(self.stream)[1]

    @property
    def chance(self) -> float:
        """Chance accuracy of one experience (percent): 100 / classes per experience."""
        return 100 / (self.classes_per_experience or SPLIT_DEFAULTS[self.datasets[0]][1])

    def benchmark(self, strategies: tuple[str, ...] = ()) -> BenchmarkConfig:
        """The benchmark configuration with these sizes (and ``strategies``, default: Table 2's)."""
        names = {f.name for f in dataclasses.fields(StreamSizes)}
        sizes = {name: getattr(self, name) for name in names}
        sizes["overridden"] = tuple(k for k in self.overridden if k in names)
        return BenchmarkConfig(**sizes, strategies=tuple(strategies) or TABLE2_STRATEGIES)


@dataclass(frozen=True)
class BenchmarkConfig(StreamSizes):
    """The benchmark (Section 4.3): :class:`StreamSizes` plus ``strategies``, paper labels
    (:data:`TABLE2_STRATEGIES` by default); ``figure8``: whether Figure 8's runs train (LR-k and HN-k at
    :attr:`curve_depth`, measuring the accuracy of every seen experience every ``eval_every`` steps,
    even where ``strategies`` lacks them; without it no run records curves, and a profile short of time
    leaves Figure 8 out); and ``curve_without_replay``: whether Figure 8's LR-k with c = 0 (no replay)
    trains besides (no claim rests on it). Every field is a notebook parameter."""

    strategies: tuple[str, ...] = TABLE2_STRATEGIES
    figure8: bool = True
    curve_without_replay: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.strategies:
            raise ConfigError("BenchmarkConfig.strategies must not be empty")
        for label in self.strategies:
            strategy_sections(label)

    @property
    def curve_labels(self) -> tuple[str, str]:
        """LR-k and HN-k at :attr:`curve_depth`."""
        return f"LR-{self.curve_depth}", f"HN-{self.curve_depth}"

    def run_config(self, label: str, seed: int, replay_coef: float = 1.0) -> RunConfig:
        """One run: ``label`` a paper label, ``replay_coef`` LR's c."""
        sections = strategy_sections(label, self.buffer_size, replay_coef)
        train = {"epochs": self.epochs, "batch_size": self.batch_size, "seed": seed, "lr": self.lr}
        if self.figure8 and label in self.curve_labels:
            train["eval_every"] = self.eval_every
        return from_dict(RunConfig, {
            **sections,
            "stream": {"name": self.stream, "seed": seed, "classes_per_experience": self.classes_per_experience,
                       "max_per_class": self.max_per_class, "max_per_class_test": self.max_per_class_test},
            "train": train,
        })


@dataclass
class BenchmarkRuns:
    """What :func:`run_benchmarks` trained.

    Attributes:
        runs: one row per (strategy, seed): aca, learning_accuracy, forgetting (percent),
            train_time_s, parameters, stored_floats.
        results: (strategy label, seed) -> results of the Table 2 runs.
        curves: (Figure 8 model, seed) -> results of the runs at ``curve_depth``; models
            ``"LR-k (c = 0)"``, ``"LR-k (c = 1)"`` and ``"HN-k"``.
    """

    runs: pd.DataFrame
    results: dict[tuple[str, int], Results]
    curves: dict[tuple[str, int], Results]


def run_benchmarks(cfg: BenchmarkConfig, root: str | os.PathLike | None = None,
                   progress: bool | None = None, executor: str = "inprocess", address: str | None = None,
                   sweep_dir: str | os.PathLike | None = None, **sweep_options: Any) -> BenchmarkRuns:
    """Train every strategy of ``cfg`` per seed, and, with ``cfg.figure8``, LR-k and HN-k at
    ``curve_depth`` (and LR-k with c = 0 unless ``cfg.curve_without_replay`` is False) (run directories
    cached under ``root``, default ``runs/``).

    In process by default; ``executor="ray"`` (with ``address`` for a cluster, and
    :class:`phn.sweep.SweepOptions` fields such as ``max_concurrent``) runs the same runs as a Ray
    sweep recorded in ``sweep_dir`` (:func:`phn.sweep.run_configs`): the same run directories, so
    either executor reuses the other's results."""
    from phn.sweep import run_configs, trial_id

    lr_label, hn_label = cfg.curve_labels
    jobs = [(label, seed, 1.0) for seed in cfg.seeds for label in cfg.strategies]
    if cfg.figure8 and cfg.curve_without_replay:
        jobs += [(lr_label, seed, 0.0) for seed in cfg.seeds]
    for extra in (lr_label, hn_label) if cfg.figure8 else ():  # Figure 8 needs them even when Table 2's list lacks them
        if extra not in cfg.strategies:
            jobs += [(extra, seed, 1.0) for seed in cfg.seeds]
    configs = [cfg.run_config(label, seed, coef) for label, seed, coef in jobs]
    done, trials = run_configs(configs, root, executor=executor, address=address, sweep_dir=sweep_dir,
                               progress=progress, desc="benchmark runs", **sweep_options)
    # a sweep's timing flags (trials that ran beside others) go with the rows into Table 2
    flags = None if trials is None else trials.set_index("trial")[["beside", "shared_cores"]]
    rows, results, curves = [], {}, {}
    for (label, seed, coef), run_cfg in zip(jobs, configs, strict=True):
        res = done[trial_id(run_cfg)]
        if coef and label in cfg.strategies:
            results[label, seed] = res
            timing = {} if flags is None else flags.loc[trial_id(run_cfg)].to_dict()
            rows.append({"strategy": label, "seed": seed, **res.summary(), **timing})
        if cfg.figure8 and label in cfg.curve_labels:
            curves[label if label == hn_label else f"{label} (c = {coef:g})", seed] = res
    return BenchmarkRuns(pd.DataFrame(rows), results, curves)


def benchmark_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std over seeds per strategy (columns ``<metric>`` and ``<metric>_std`` for aca,
    learning_accuracy, forgetting, train_time_s; ``seeds``), in the order the strategies first appear
    (:func:`phn.sweep.summarize`, the sweeps' aggregation)."""
    from phn.sweep import summarize

    return summarize(runs)


def benchmark_table(summary: pd.DataFrame, stream: str) -> pd.DataFrame:
    """Table 2 as text: ACA, forgetting, learning accuracy (percent, mean ± std), train time (s) and seeds
    per strategy; with the paper's columns (``paper ACA``, ``paper forgetting``, ``paper time``) when
    ``stream`` is one of the paper's."""
    def cell(metric: str, digits: int = 1) -> list[str]:
        return [f"{m:.{digits}f} ± {s:.{digits}f}" for m, s in zip(summary[metric], summary[f"{metric}_std"], strict=True)]

    from phn.sweep import timing_note

    times = [f"{text} {timing_note(r)}".strip() for text, r in zip(cell("train_time_s", 0), summary.itertuples(),
                                                                   strict=True)]
    table = pd.DataFrame({"strategy": summary.strategy, "ACA (%)": cell("aca"), "forgetting (%)": cell("forgetting"),
                          "learning acc. (%)": cell("learning_accuracy"), "train time (s)": times,
                          "seeds": summary.seeds})
    paper = paper_table2(stream)
    if paper is not None:
        paper = paper.rename(columns={"paper_aca": "paper ACA", "paper_forgetting": "paper forgetting",
                                      "paper_time": "paper time (GPU)"})
        table = table.merge(paper, on="strategy", how="left")
    return table


def memory_table(num_classes: int = 100, num_tasks: int = 20, buffer_size: int = 200, input_hw: int = 32,
                 depths: tuple[int, ...] = (0, 1, 2, 3, 4)) -> pd.DataFrame:
    """Table 6 computed from built objects: for each freeze depth k, the LR-k exemplar shape (the frozen
    prefix run on one ``input_hw`` x ``input_hw`` image), its buffer in floats and MB (32-bit, MB =
    2**20 bytes as the paper's numbers imply), and the HN-k hypernetwork's parameters (``num_classes``
    outputs, ``num_tasks`` task embeddings) and MB."""
    from phn.hyper.hypernet import HyperNetwork
    from phn.models.resnet import build_prefix
    from phn.models.target import GeneratedResNet

    rows = []
    for k in depths:
        with torch.no_grad():
            image = torch.zeros(1, 3, input_hw, input_hw)
            shape = tuple(build_prefix(k).eval()(image).shape[1:]) if k else tuple(image.shape[1:])
        hnet = HyperNetwork.for_target(GeneratedResNet(k, num_classes), num_tasks, HyperConfig())
        hn_params = sum(p.numel() for p in hnet.parameters())
        floats = buffer_size * int(np.prod(shape))
        rows.append({"k": k, "LR": f"LR-{k}", "exemplar shape": " x ".join(map(str, shape)), "buffer floats": floats,
                     "LR MB": floats * 4 / 2**20, "HN": "HN-F" if k == 0 else f"HN-{k}", "HN parameters": hn_params,
                     "HN MB": hn_params * 4 / 2**20})
    return pd.DataFrame(rows)


def paper_memory_check(cifar: pd.DataFrame, tiny: pd.DataFrame) -> pd.DataFrame:
    """Computed Table 6 (:func:`memory_table` for CIFAR-100 and TinyImageNet as printed) against the
    paper's numbers: one row per (benchmark, quantity, k) with ``paper``, ``computed`` and ``equal``
    (parameters exactly; MB at the paper's two decimals)."""
    rows = []
    for name, table in (("split-cifar100", cifar), ("split-tinyimagenet", tiny)):
        for row in table.to_dict("records"):
            params, hn_mb = PAPER_TABLE6_HN[row["k"]]
            for quantity, paper in (("HN parameters", params), ("HN MB", hn_mb),
                                    ("LR MB", PAPER_TABLE6_LR_MB[name][row["k"]])):
                value = row[quantity]
                equal = value == paper if quantity == "HN parameters" else abs(value - paper) <= 0.0051
                rows.append({"benchmark": name, "quantity": quantity, "k": row["k"], "paper": paper,
                             "computed": value, "equal": bool(equal)})
    return pd.DataFrame(rows)


def experience_curves(curves: dict[tuple[str, int], Results], experiences: int = 3) -> pd.DataFrame:
    """Figure 8: accuracy (percent) of experiences 1..``experiences`` over training steps, one row per
    (model, seed, evaluation): model, seed, global_step, trained_experience, experience (1-based),
    accuracy."""
    frames = []
    for (model, seed), res in curves.items():
        table = res.curves
        if table.empty:
            continue
        table = table[table.evaluated_experience < experiences]
        frames.append(pd.DataFrame({"model": model, "seed": seed, "global_step": table.global_step,
                                    "trained_experience": table.trained_experience + 1,
                                    "experience": table.evaluated_experience + 1, "accuracy": 100 * table.accuracy}))
    columns = ["model", "seed", "global_step", "trained_experience", "experience", "accuracy"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def stability(curves: dict[tuple[str, int], Results], experiences: int = 3, by_seed: bool = False) -> pd.DataFrame:
    """Figure 8's claim in numbers, per model (mean over seeds; ``by_seed``: one row per model and
    seed): learning accuracy and forgetting of the first ``experiences`` experiences (percent), from
    each run's accuracy matrix."""
    from phn import metrics

    rows = []
    for (model, seed), res in curves.items():
        acc = res.acc
        n = min(experiences, acc.shape[0])
        rows.append({"model": model, "seed": seed,
                     "learning_accuracy": 100 * float(np.mean(metrics.learning_accuracies(acc)[:n])),
                     "forgetting": 100 * float(np.mean(metrics.forgettings(acc)[:n]))})
    table = pd.DataFrame(rows, columns=["model", "seed", "learning_accuracy", "forgetting"])
    if by_seed:
        return table
    return table.groupby("model", sort=False)[["learning_accuracy", "forgetting"]].mean().reset_index()


CLEAR_MARGIN = 20.0  # points above chance a strategy must learn (mean per run) to be judged


def benchmark_findings(cfg: BenchmarkConfig, runs: pd.DataFrame, stable: pd.DataFrame | None,
                       memory: pd.DataFrame | None, configuration: str, margin: float = 1.0,
                       equivalence: float = 2.0, converged: Mapping[str, bool] | None = None,
                       chance: float | None = None) -> list[Finding]:
    """The ledger's findings of the benchmark notebook, by the ledger's rule (:data:`phn.ledger.RULE_MARKDOWN`):
    seed-paired 95 % intervals, depth by depth, never the worst of one family against the best of another.

    Args:
        runs: one row per (strategy, seed): aca, forgetting, learning_accuracy, train_time_s (percent, s).
        stable: :func:`stability` with ``by_seed=True`` (or None).
        memory: :func:`paper_memory_check` (or None).
        margin: points a difference must exceed (interval beyond it).
        equivalence: the equivalence margin of "about as accurate" (points).
        converged: strategy -> converged at this profile (:func:`phn.experiments.convergence.profile_check`);
            a claim resting on a strategy marked False is not judged (inconclusive). None: not checked.
        chance: chance accuracy of one experience (percent); a claim resting on a strategy whose mean
            learning accuracy is below chance + :data:`CLEAR_MARGIN` is not judged either.

    Claims:
    - ``method-forgetting``: at each depth k, LR-k forgets more than HN-k (and Naive more than HN-F).
    - ``table2-hn-beats-lr``: at each depth k, HN-k's ACA above LR-k's.
    - ``table2-hn2-near-hnf``: HN-2's ACA equivalent to HN-F's within ``equivalence``, and HN-F's train time
      above HN-2's.
    - ``figure8-stability``: at ``curve_depth``, LR-k (c = 1) forgets experiences 1..3 more than HN-k,
      and learns them better.
    - ``table6-memory``: every computed number equals the paper's.
    """
    findings = []
    have = set(runs.strategy)
    paper = cfg.paper_setting
    learned = runs.groupby("strategy").learning_accuracy.mean().to_dict()

    def finding(claim: str, specs: list[tuple[str, str, str, str]], text: str, table: pd.DataFrame = runs,
                gate: Sequence[str] | None = None) -> None:
        """specs: (a, b, metric, expected outcome) per part, seed-paired (:func:`phn.ledger.judge`).
        ``gate``: the strategies whose convergence the claim rests on (default: the parts' own labels)."""
        labels = gate if gate is not None else sorted({x for a, b, *_ in specs for x in (a, b)})
        below = [] if chance is None else [x for x in labels if x in learned and learned[x] < chance + CLEAR_MARGIN]
        findings.append(judge(claim, specs, table, text, configuration, paper, margin=margin, equivalence=equivalence,
                              not_converged=unconverged(labels, converged), below_chance=below))

    depths = [k for k in range(1, 5) if {f"HN-{k}", f"LR-{k}"} <= have]
    forgetting = [(f"LR-{k}", f"HN-{k}", "forgetting", "greater") for k in depths]
    if {"Naive", "HN-F"} <= have:
        forgetting.append(("Naive", "HN-F", "forgetting", "greater"))
    if forgetting:
        finding("method-forgetting", forgetting, "forgetting difference (points), 95 % interval over seeds")
    if depths:
        finding("table2-hn-beats-lr", [(f"HN-{k}", f"LR-{k}", "aca", "greater") for k in depths],
                "ACA difference (points), 95 % interval over seeds")
    if {"HN-2", "HN-F"} <= have:
        finding("table2-hn2-near-hnf", [("HN-2", "HN-F", "aca", "equivalent"),
                                        ("HN-F", "HN-2", "train_time_s", "greater")],
                f"ACA difference (points; equivalent within {equivalence:g}) and train time difference (s, this "
                "machine)")
    if stable is not None and not stable.empty and "seed" in stable:
        lr, hn_model = f"LR-{cfg.curve_depth} (c = 1)", f"HN-{cfg.curve_depth}"
        if {lr, hn_model} <= set(stable.model):
            finding("figure8-stability", [(lr, hn_model, "forgetting", "greater"),
                                          (lr, hn_model, "learning_accuracy", "greater")],
                    "experiences 1-3, differences (points), 95 % interval over seeds",
                    table=stable.rename(columns={"model": "strategy"}), gate=[f"LR-{cfg.curve_depth}", hn_model])
    if memory is not None:
        equal = int(memory.equal.sum())
        findings.append(Finding("table6-memory", f"{equal} of {len(memory)} numbers computed from built "
                                "hypernetworks and prefixes equal the paper's (parameters exactly, MB to two "
                                "decimals).", "holds" if equal == len(memory) else "does not hold at this scale",
                                "the paper's configuration: 100 outputs, 20 tasks, buffers 200 (32 x 32) and 400 "
                                "(64 x 64)"))
    return findings


def benchmark_not_measured(cfg: BenchmarkConfig, findings: Sequence[Finding]) -> dict[str, str]:
    """Why each benchmark claim without a finding was not measured by this grid (for
    :func:`phn.ledger.record`'s ``not_measured``): the strategies or the Figure 8 runs it needs and
    the grid leaves out at ``cfg.profile``."""
    made = {f.claim for f in findings}
    have = set(cfg.strategies)
    depths = ", ".join(str(k) for k in range(1, 5))
    needs = {
        "method-forgetting": f"LR-k and HN-k at one depth k ({depths}), or Naive and HN-F",
        "table2-hn-beats-lr": f"LR-k and HN-k at one depth k ({depths})",
        "table2-hn2-near-hnf": "HN-2 and HN-F",
        "figure8-stability": f"Figure 8's runs (LR-{cfg.curve_depth} and HN-{cfg.curve_depth} with curves, "
                             "`-p figure8 True`)",
    }
    missing = {"table2-hn2-near-hnf": sorted({"HN-2", "HN-F"} - have)}
    out = {}
    for claim, what in needs.items():
        if claim in made:
            continue
        lacking = f" (the grid lacks {', '.join(missing[claim])})" if missing.get(claim) else ""
        out[claim] = (f"at profile {cfg.profile} its grid leaves out {what}{lacking}; the chapter's introduction gives "
                      "the command that adds it")
    return out


__all__ = [
    "CLEAR_MARGIN", "benchmark_not_measured", "PAPER_STREAMS", "TABLE2_STRATEGIES", "BenchmarkConfig", "BenchmarkRuns", "StreamSizes", "benchmark_findings",
    "benchmark_summary", "benchmark_table", "experience_curves", "memory_table", "paper_memory_check",
    "run_benchmarks", "stability", "strategy_sections",
]
