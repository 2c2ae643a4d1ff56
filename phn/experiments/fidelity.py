"""Fidelity check: phn against the authors' release on one fixed stream, in two modes.

The stream is Split-FashionMNIST, 5 experiences of 2 classes in the order 0..9, the first 1000
training (and test) images per class, 3 epochs per experience, batch 64: small enough for a CPU,
and the stream on which the authors' own code was run (:mod:`phn.reference`).

Modes (:data:`MODES`):

- ``"phn"``: phn's defaults. The frozen prefix normalises with running statistics of experience 1,
  so a prediction never depends on its test batch; evaluated with shuffled (``interleaved``) and
  class-``sorted`` test batches to show that.
- ``"authors"``: the authors' batch-statistics BN in every non-generated layer. One trained model is
  evaluated under three test orders: ``index`` (their interleaved evaluation), ``interleaved`` (a
  seeded shuffle) and ``sorted`` (their pipeline, Avalanche's class-sorted test sets).

:func:`run_fidelity` trains each (strategy, init, mode, seed) once (results cached in run
directories, so an interrupted check resumes where it stopped), :func:`fidelity_table` aggregates
the seeds beside the authors' numbers, and :func:`drift_table` relates how far each old task's
generated weights moved during an experience to how much accuracy it lost.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from phn.config import ConfigError, RunConfig, from_dict
from phn.provenance import REPO_DIR
from phn.reference import authors_release_fashionmnist
from phn.results import Results
from phn.train import run_config, run_dir_for

FIXED_STREAM: dict[str, Any] = {"name": "split-fashionmnist", "class_order": list(range(10)), "max_per_class": 1000}
EPOCHS = 3

STRATEGIES: dict[str, dict[str, dict[str, Any]]] = {
    "HN-4": {"strategy": {"name": "hn"}, "model": {"freeze_depth": 4}},
    "HN-2": {"strategy": {"name": "hn"}, "model": {"freeze_depth": 2}},
    "HN-F": {"strategy": {"name": "hn"}, "model": {"freeze_depth": 0}},
    "Naive": {"strategy": {"name": "naive"}, "model": {"freeze_depth": 4}},
}
MODES: dict[str, dict[str, dict[str, Any]]] = {
    "phn": {"model": {"prefix_norm": "running"},
            "train": {"eval_order": "interleaved", "extra_eval_orders": ["sorted"]}},
    "authors": {"model": {"prefix_norm": "batch"},
                "train": {"eval_order": "index", "extra_eval_orders": ["interleaved", "sorted"]}},
}


@dataclass(frozen=True)
class FidelityRun:
    """One training run of the check: its labels and its configuration."""

    strategy: str
    init: str
    mode: str
    seed: int
    config: RunConfig
    data_path: str = "device"


def fidelity_config(strategy: str, mode: str, seed: int, init: str = "pytorch", epochs: int = EPOCHS,
                    max_per_class: int = FIXED_STREAM["max_per_class"], data_path: str = "device") -> RunConfig:
    """The configuration of one run on the fixed stream.

    Args:
        strategy: a key of :data:`STRATEGIES` (``"HN-4"``, ``"HN-2"``, ``"HN-F"``, ``"Naive"``).
        mode: a key of :data:`MODES` (``"phn"`` or ``"authors"``).
        seed: model seed (the class order is fixed).
        init: hypernetwork head initialisation (``"pytorch"`` or ``"kaiming"``).
        epochs, max_per_class: the stream's size (defaults: the authors' check).
        data_path: ``"device"`` (phn's default: the stream resident on the device, augmented there) or
            ``"loader"`` (a torch DataLoader with torchvision transforms).
    """
    if strategy not in STRATEGIES or mode not in MODES:
        raise ValueError(f"unknown strategy {strategy!r} or mode {mode!r}; "
                         f"strategies: {list(STRATEGIES)}, modes: {list(MODES)}")
    sections: dict[str, dict[str, Any]] = {
        "stream": {**FIXED_STREAM, "max_per_class": max_per_class, "seed": seed},
        "hyper": {"init": init}, "train": {"epochs": epochs, "seed": seed, "data_path": data_path},
    }
    for overrides in (STRATEGIES[strategy], MODES[mode]):
        for section, fields in overrides.items():
            sections[section] = {**sections.get(section, {}), **fields}
    return from_dict(RunConfig, sections)


def fidelity_plan(strategies: Sequence[str], seeds: Sequence[int], modes: Sequence[str] = tuple(MODES),
                  inits: Sequence[str] = ("pytorch",), single_seed: Iterable[str] = ("HN-F",),
                  data_paths: Sequence[str] = ("device",), **sizes: int) -> list[FidelityRun]:
    """Every run of the check: strategies x inits x modes x data paths x seeds, in that nesting (seeds
    innermost).

    Strategies in ``single_seed`` run with the first seed only (HN-F is the slowest), and the init
    only varies for hypernetworks (Naive runs once per mode and seed). ``sizes``: ``epochs``,
    ``max_per_class`` for :func:`fidelity_config`.
    """
    single = set(single_seed)
    plan = []
    for strategy in strategies:
        for init in inits if strategy.startswith("HN") else inits[:1]:
            for mode in modes:
                for path in data_paths:
                    for seed in seeds[:1] if strategy in single else seeds:
                        plan.append(FidelityRun(strategy, init, mode, seed,
                                                fidelity_config(strategy, mode, seed, init, data_path=path, **sizes),
                                                path))
    return plan


def run_fidelity(plan: Sequence[FidelityRun], root: str | os.PathLike | None = None,
                 progress: bool | None = None) -> tuple[pd.DataFrame, dict[FidelityRun, Results]]:
    """Train every run of ``plan`` (or load it from its run directory under ``root``).

    Returns:
        ``runs``: one row per (run, evaluation order): strategy, init, mode, data_path, seed, order, aca,
        learning_accuracy, forgetting (percent), train_time_s, run_dir; and the full results by run.
    """
    rows, results = [], {}
    bar = tqdm(plan, desc="fidelity runs", disable=progress is False, dynamic_ncols=True)
    for item in bar:
        bar.set_postfix_str(f"{item.strategy} {item.init} {item.mode} seed {item.seed}")
        run_dir = run_dir_for(item.config, root)
        res = run_config(item.config, resume=True, out_dir=run_dir, progress=progress)
        results[item] = res
        for summary in res.summary_by_order().to_dict("records"):
            rows.append({"strategy": item.strategy, "init": item.init, "mode": item.mode,
                         "data_path": item.data_path, "seed": item.seed,
                         **summary, "train_time_s": float(np.sum(res.train_time)), "run_dir": str(run_dir)})
    return pd.DataFrame(rows), results


def _mean_std(values: pd.Series) -> str:
    values = values.dropna()
    if len(values) == 1:
        return f"{values.iloc[0]:.1f}"
    return f"{values.mean():.1f} ± {values.std(ddof=1):.1f}"


def fidelity_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Seeds aggregated beside the authors' numbers.

    One row per (strategy, init, mode, data path, order): ``seeds``, ACA / learning accuracy / forgetting as
    "mean ± std" over seeds (sample std), ``aca_seeds`` (each seed's ACA), ``max_forgetting`` (the
    worst seed), and the authors' code on the same stream (:mod:`phn.reference`): for the authors'
    mode under the same test order, for phn's mode (whose predictions do not depend on the order)
    under their interleaved ``index`` order. ``aca_gap`` = our mean ACA minus theirs.
    """
    reference = authors_release_fashionmnist()
    runs = runs if "data_path" in runs else runs.assign(data_path="device")
    rows = []
    for (strategy, init, mode, path, order), group in runs.groupby(["strategy", "init", "mode", "data_path", "order"],
                                                                    sort=False):
        group = group.sort_values("seed")
        reference_order = order if mode == "authors" else "index"
        ref = reference[(reference.strategy == strategy) & (reference.order == reference_order)]
        authors = float(ref.authors_aca.iloc[0]) if len(ref) else np.nan
        rows.append({
            "strategy": strategy, "init": init, "mode": mode, "data_path": path, "order": order, "seeds": len(group),
            "aca": _mean_std(group.aca), "learning_accuracy": _mean_std(group.learning_accuracy),
            "forgetting": _mean_std(group.forgetting),
            "aca_seeds": " / ".join(f"{v:.1f}" for v in group.aca),
            "max_forgetting": round(float(group.forgetting.max()), 1),
            "authors_order": reference_order if len(ref) else "",
            "authors_aca": authors,
            "authors_aca_seeds": ref.authors_aca_seeds.iloc[0] if len(ref) else "",
            "aca_gap": round(float(group.aca.mean()) - authors, 1),
        })
    return pd.DataFrame(rows)


def data_path_comparison(runs: pd.DataFrame, metrics: Sequence[str] = ("forgetting", "aca")) -> pd.DataFrame:
    """Does the device-resident data path train like the DataLoader path? Per (strategy, init, mode,
    order, metric) with runs on both paths: each path's seeds, mean and sample std (percent); the
    seed-paired difference device - loader (same seed: same initialisation, other batches and
    augmentations) with its 95 % t interval (:func:`phn.ledger.paired_interval`); Welch's t test of
    the means and the Brown-Forsythe (median-centred Levene) test of the spreads, both two-sided.

    Args:
        runs: :func:`run_fidelity`'s rows (column ``data_path`` with ``"device"`` and ``"loader"``).
    """
    from scipy import stats

    from phn.ledger import paired_interval, paired_values

    rows = []
    for keys, group in runs.groupby(["strategy", "init", "mode", "order"], sort=False):
        device, loader = (group[group.data_path == path] for path in ("device", "loader"))
        if len(device) < 2 or len(loader) < 2:
            continue
        for metric in metrics:
            a, b = device[metric], loader[metric]
            paired = paired_values(group, "data_path", "device", "loader", metric)
            diff = paired_interval(*paired) if len(paired[0]) else None
            rows.append({
                **dict(zip(["strategy", "init", "mode", "order"], keys, strict=True)), "metric": metric,
                "device_seeds": len(a), "device_mean": a.mean(), "device_std": a.std(ddof=1),
                "loader_seeds": len(b), "loader_mean": b.mean(), "loader_std": b.std(ddof=1),
                "paired_seeds": len(paired[0]), "difference": diff.mean if diff else np.nan,
                "difference_low": diff.low if diff else np.nan, "difference_high": diff.high if diff else np.nan,
                "welch_p": float(stats.ttest_ind(a, b, equal_var=False).pvalue),
                "spread_p": float(stats.levene(a, b, center="median").pvalue),
            })
    return pd.DataFrame(rows)


def drift_rows(results: Results) -> pd.DataFrame:
    """Old tasks' drift during each experience beside the accuracy they lost in it.

    One row per (experience i >= 1, earlier task j): ``R`` = ||H(e_j) - H*(e_j)||^2 summed over all
    generated tensors (Eq. 7's term for task j at the end of experience i), ``relative_drift`` =
    sqrt(R / ||H*(e_j)||^2), the relative drift of each tensor group (columns ``drift <group>``),
    and ``accuracy_drop`` = acc[i-1, j] - acc[i, j] in points (the run's primary order).
    """
    diag = results.diagnostics
    if diag.empty:
        return pd.DataFrame()
    per_group = diag.assign(drift=np.sqrt(diag.sq_distance / diag.sq_norm)).pivot_table(
        index=["experience", "task"], columns="group", values="drift", sort=False)
    per_group.columns = [f"drift {g}" for g in per_group.columns]
    totals = diag.groupby(["experience", "task"], sort=False)[["sq_distance", "sq_norm"]].sum()
    table = pd.DataFrame({"R": totals.sq_distance, "relative_drift": np.sqrt(totals.sq_distance / totals.sq_norm)})
    table = table.join(per_group).reset_index()
    acc = results.acc
    table["accuracy_drop"] = [100 * (acc[i - 1, j] - acc[i, j]) for i, j in zip(table.experience, table.task, strict=True)]
    return table


def drift_table(results: dict[FidelityRun, Results]) -> pd.DataFrame:
    """:func:`drift_rows` of every hypernetwork run, averaged per (strategy, init, mode, data path) over all
    (seed, experience, earlier task) triples; ``pairs`` counts them. ``max_accuracy_drop`` is the
    worst single drop, ``corr_drift_drop`` the correlation of relative drift and accuracy drop."""
    frames = [drift_rows(res).assign(strategy=run.strategy, init=run.init, mode=run.mode, data_path=run.data_path,
                                     seed=run.seed)
              for run, res in results.items()]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame()
    rows = pd.concat(frames, ignore_index=True)
    drift_columns = [c for c in rows.columns if c.startswith("drift ")]
    out = []
    for (strategy, init, mode, path), group in rows.groupby(["strategy", "init", "mode", "data_path"], sort=False):
        out.append({
            "strategy": strategy, "init": init, "mode": mode, "data_path": path, "pairs": len(group),
            "R": group.R.mean(), "relative_drift": group.relative_drift.mean(),
            **{c: group[c].mean() for c in drift_columns if group[c].notna().any()},
            "accuracy_drop": group.accuracy_drop.mean(), "max_accuracy_drop": group.accuracy_drop.max(),
            "corr_drift_drop": group.relative_drift.corr(group.accuracy_drop),
        })
    return pd.DataFrame(out)


# The recorded checks rendered in the book's fidelity chapter (relative to the repository root; each
# folder's README.md gives its command): the strategies and modes, the two initialisations, the data paths
RECORDED_FIDELITY = ("benchmarks/results/fidelity", "benchmarks/results/fidelity-init",
                     "benchmarks/results/fidelity-datapath")


@dataclass
class RecordedFidelity:
    """One recorded fidelity check (the files ``benchmarks/fidelity.py`` writes in ``--out``).

    Attributes:
        folder: where it was read from.
        runs: :func:`run_fidelity`'s rows (``runs.csv``).
        drift: :func:`drift_table` (``drift.csv``; empty without hypernetwork runs).
        data_paths: :func:`data_path_comparison` (``data_paths.csv``; empty with one data path).
        meta: ``fidelity.json``: command, date, commit, plain_img_s (this machine's
            :func:`phn.machine.plain_images_per_second`), seconds, runs.
    """

    folder: Path
    runs: pd.DataFrame
    drift: pd.DataFrame = field(default_factory=pd.DataFrame)
    data_paths: pd.DataFrame = field(default_factory=pd.DataFrame)
    meta: dict[str, Any] = field(default_factory=dict)

    def provenance(self) -> str:
        """One Markdown sentence: the command, when, at which commit and on how fast a machine."""
        m = self.meta
        speed = f", on a machine that trains the plain slim ResNet-18 at {m['plain_img_s']:,.0f} img/s" \
            if m.get("plain_img_s") else ""
        took = f" ({m['seconds'] / 60:.0f} min)" if m.get("seconds") else ""
        return (f"Recorded with `{m.get('command', '?')}`{took} on {str(m.get('date', '?'))[:10]} at commit "
                f"`{str(m.get('commit') or '?')[:7]}`{speed}; files in `{self.where()}/`.")

    def where(self) -> str:
        """The folder relative to the repository root where it lies inside it, else its name."""
        try:
            return str(self.folder.resolve().relative_to(REPO_DIR.resolve()))
        except ValueError:
            return self.folder.name


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.is_file() and path.stat().st_size > 1 else pd.DataFrame()


def load_recorded(folder: str | os.PathLike) -> RecordedFidelity:
    """A recorded fidelity check (``folder`` absolute, or relative to the repository root).

    Raises:
        ConfigError: one line naming the folder and the command that records it, if it holds no
            ``runs.csv``.
    """
    path = Path(folder)
    path = path if path.is_absolute() else REPO_DIR / path
    if not (path / "runs.csv").is_file():
        raise ConfigError(f"no recorded fidelity check in {path} (no runs.csv): record one with "
                          f"'python benchmarks/fidelity.py --out {folder}' or pass another folder")
    meta_path = path / "fidelity.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    return RecordedFidelity(path, pd.read_csv(path / "runs.csv"), _read_csv(path / "drift.csv"),
                            _read_csv(path / "data_paths.csv"), meta)


# Newer recorded runs that replace rows of the main check (RECORDED_FIDELITY[0]) whose strategy's training
# changed after it was recorded: (folder, the (strategy, mode) rows it replaces). Naive trains with
# channels-last tensors and fused Adam and recalibrates its BN statistics after every experience since
# 2026-12-04; the recalibration leaves the authors' batch-statistics mode alone.
NEWER_FIDELITY = (("benchmarks/results/baseline-levers/fidelity-on", (("Naive", "authors"),)),
                  ("benchmarks/results/baseline-levers/fidelity-recalibrated", (("Naive", "phn"),)))


@dataclass
class UpdatedFidelity:
    """The main check with some rows replaced by newer recorded runs (:func:`with_newer_runs`).

    Attributes:
        runs: the main check's rows, the replaced (strategy, mode) pairs taken from the newer folders.
        base: the main check as recorded.
        newer: (recorded check, the (strategy, mode) pairs taken from it), in order.
    """

    runs: pd.DataFrame
    base: RecordedFidelity
    newer: list[tuple[RecordedFidelity, tuple[tuple[str, str], ...]]]

    def provenance(self) -> str:
        """The main check's sentence, then one per newer folder naming the rows it gave."""
        lines = [self.base.provenance()]
        for check, pairs in self.newer:
            rows = ", ".join(f"{strategy} in {MODE_NAMES.get(mode, mode)}" for strategy, mode in pairs)
            lines.append(f"Rows of {rows}: newer runs of the current training code. " + check.provenance())
        return "\n\n".join(lines)


def with_newer_runs(main: RecordedFidelity, newer: Sequence[tuple[str, Sequence[tuple[str, str]]]] = NEWER_FIDELITY
                    ) -> UpdatedFidelity:
    """``main``'s rows with each newer folder's (strategy, mode) rows in place of its own (folders
    relative to the repository root, or absolute)."""
    runs, used = main.runs, []
    for folder, pairs in newer:
        check = load_recorded(folder)
        pairs = tuple((str(s), str(m)) for s, m in pairs)
        pick = lambda df: pd.Series([(s, m) in pairs for s, m in zip(df.strategy, df["mode"])], index=df.index)  # noqa: E731
        runs = pd.concat([runs[~pick(runs)], check.runs[pick(check.runs)]], ignore_index=True)
        used.append((check, pairs))
    order = {name: i for i, name in enumerate(dict.fromkeys([*main.runs.strategy, *runs.strategy]))}
    modes = {name: i for i, name in enumerate(dict.fromkeys([*MODES, *runs["mode"]]))}
    runs = runs.sort_values(["strategy", "mode"], key=lambda c: c.map(order if c.name == "strategy" else modes),
                            kind="stable").reset_index(drop=True)
    return UpdatedFidelity(runs, main, used)


def check_against_authors(runs: pd.DataFrame) -> pd.DataFrame:
    """:func:`fidelity_table` as the book shows it: one row per (strategy, init, mode, data path, order)
    with the seeds, our ACA, learning accuracy and forgetting (mean ± std), the worst seed's
    forgetting, the authors' ACA on the same stream and order, and our mean minus theirs. phn's mode
    is shown once (its predictions do not depend on the test order: its runs' orders agree)."""
    table = fidelity_table(runs)
    if "mode" in table and len(table):
        phn_rows = table["mode"] == "phn"
        table = pd.concat([table[phn_rows].drop_duplicates(["strategy", "init", "data_path"]).assign(order="any"),
                           table[~phn_rows]]).sort_index(kind="stable")
    return table[["strategy", "init", "mode", "data_path", "order", "seeds", "aca", "learning_accuracy", "forgetting",
                  "max_forgetting", "authors_aca", "aca_gap"]].reset_index(drop=True)


HEADERS = {"strategy": "model", "data_path": "data path", "aca": "ACA", "learning_accuracy": "learning acc.",
           "max_forgetting": "worst", "authors_aca": "authors' ACA", "aca_gap": "gap"}
TABLE_STYLE = [{"selector": "", "props": "border-collapse: collapse; font-size: 0.85em; margin-bottom: 1em;"},
               {"selector": "th, td", "props": "padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: left;"}]


def for_display(table: pd.DataFrame, labels: Sequence[str] = ("init", "mode", "data_path")) -> Any:
    """A table of this module as the book shows it (a pandas Styler, no index): the ``labels``
    columns that hold one value are dropped (the section says it), mode and test order share a
    column, headers are words, and "mean ± std" cells do not wrap."""
    shown = table.drop(columns=[c for c in labels if c in table and table[c].nunique() <= 1])
    if {"mode", "order"} <= set(shown):  # one column for both: the table must fit the page
        shown = shown.assign(order=shown["mode"] + ", " + shown["order"]).drop(columns="mode")
        shown = shown.rename(columns={"order": "mode, test order"})
    shown = shown.rename(columns=HEADERS).replace(r" ± ", "\u00a0±\u00a0", regex=True)
    return (shown.style.hide(axis="index").set_table_styles(TABLE_STYLE)
            .format(lambda v: f"{v:g}" if isinstance(v, float) else v, na_rep=""))


def mean_of(runs: pd.DataFrame, metric: str, **labels: Any) -> float:
    """The mean of ``metric`` over the rows of ``runs`` matching every label (e.g. strategy="HN-4",
    mode="phn", order="interleaved"); NaN if none match. For prose computed from a recorded check."""
    rows = runs
    for column, value in labels.items():
        rows = rows[rows[column] == value]
    return float(rows[metric].mean()) if len(rows) else float("nan")


def run_quick(root: str | os.PathLike, progress: bool | None = False) -> tuple[RecordedFidelity, ...]:
    """The three checks of :data:`RECORDED_FIDELITY` at tiny sizes (8 images per class, 1 epoch; seed 0,
    and seeds 0 and 1 for the data paths), trained now under ``root`` (8 runs; the checks share what
    they have in common): what the test suite runs in place of the recorded ones."""
    sizes = {"epochs": 1, "max_per_class": 8}
    main = fidelity_plan(["HN-4", "Naive"], [0], single_seed=(), **sizes)
    init = fidelity_plan(["HN-4"], [0], modes=("phn",), inits=("pytorch", "kaiming"), **sizes)
    paths = fidelity_plan(["HN-4"], [0, 1], modes=("phn",), data_paths=("device", "loader"), **sizes)
    checks = []
    for name, plan in (("fidelity", main), ("fidelity-init", init), ("fidelity-datapath", paths)):
        runs, results = run_fidelity(plan, root=root, progress=progress)
        checks.append(RecordedFidelity(Path(root) / name, runs, drift_table(results), data_path_comparison(runs),
                                       {"command": "phn.experiments.fidelity.run_quick (test sizes)"}))
    return tuple(checks)


MODE_NAMES = {"phn": "phn's mode", "authors": "the authors' mode"}


def agreement(table: pd.DataFrame) -> str:
    """A Markdown list reading :func:`check_against_authors`: per row with an authors' number, our mean
    ACA minus theirs, in points."""
    lines = []
    for row in table.dropna(subset=["authors_aca"]).itertuples():
        where = f"{row.strategy}, {MODE_NAMES.get(row.mode, row.mode)}" + ("" if row.order == "any" else f", {row.order} test order")
        init = "" if row.init == "pytorch" else f" ({row.init} init)"
        path = "" if row.data_path == "device" else f" ({row.data_path} data path)"
        lines.append(f"- {where}{init}{path}: ACA {row.aca} here against the authors' {row.authors_aca:.1f}, a gap of "
                     f"{row.aca_gap:+.1f} points on {row.seeds} seed{'s' if row.seeds > 1 else ''}.")
    return "\n".join(lines)


DRIFT_COLUMNS = {"strategy": "model", "init": "init", "mode": "mode", "pairs": "pairs", "R": "R_j",
                 "relative_drift": "relative change of H(e_j)", "accuracy_drop": "accuracy lost (points)",
                 "max_accuracy_drop": "worst loss (points)"}


def drift_summary(drift: pd.DataFrame) -> pd.DataFrame:
    """:func:`drift_table` as the book shows it: R_j, the relative change of the old tasks' generated
    weights (percent) and the accuracy they lost, per (model, init, mode)."""
    if drift.empty:
        return drift
    columns = list(DRIFT_COLUMNS)
    if drift.data_path.nunique() > 1:
        columns.insert(3, "data_path")
    table = drift[columns].rename(columns=DRIFT_COLUMNS)
    table["relative change of H(e_j)"] = 100 * table["relative change of H(e_j)"]
    return table.round({"R_j": 3, "relative change of H(e_j)": 1, "accuracy lost (points)": 1,
                        "worst loss (points)": 1})


def init_effect(drift: pd.DataFrame, mode: str = "phn") -> str:
    """One sentence from :func:`drift_table`: in ``mode``, how much larger the old tasks' relative
    change and their accuracy loss are with Kaiming-scaled heads than with PyTorch's default init."""
    rows = drift[drift["mode"] == mode].set_index("init") if not drift.empty else drift
    if not {"pytorch", "kaiming"} <= set(getattr(rows, "index", [])):
        return "(the check holds only one initialisation: nothing to compare)"
    k, p = rows.loc["kaiming"], rows.loc["pytorch"]
    return (f"In {MODE_NAMES.get(mode, mode)} the regulariser holds R_j at {k.R:.3f} with Kaiming-scaled heads and {p.R:.3f} with "
            f"PyTorch's default, but that distance is a {k.relative_drift / p.relative_drift:.1f} times larger "
            f"relative change of the old tasks' generated weights ({100 * k.relative_drift:.1f} % against "
            f"{100 * p.relative_drift:.1f} %), and they lose {k.accuracy_drop:.1f} points per experience on average "
            f"against {p.accuracy_drop:.1f}.")


def data_path_summary(paths: pd.DataFrame) -> pd.DataFrame:
    """:func:`data_path_comparison` as the book shows it: per (model, mode, metric), under the first
    test order only (phn's mode does not depend on it), each path's mean ± std and the seed-paired
    difference with its 95 % interval and the two tests' p values."""
    if paths.empty:
        return paths
    rows = paths[paths.order == paths.order.iloc[0]]
    return pd.DataFrame({
        "model": rows.strategy, "init": rows.init, "mode": rows["mode"], "metric": rows.metric,
        "seeds": rows.paired_seeds,
        "device": [f"{m:.1f} ± {s:.1f}" for m, s in zip(rows.device_mean, rows.device_std, strict=True)],
        "loader": [f"{m:.1f} ± {s:.1f}" for m, s in zip(rows.loader_mean, rows.loader_std, strict=True)],
        "device - loader [95 % interval]": [f"{d:+.1f} [{lo:.1f}, {hi:.1f}]" for d, lo, hi in
                                            zip(rows.difference, rows.difference_low, rows.difference_high, strict=True)],
        "Welch p (mean)": rows.welch_p.round(2), "Brown-Forsythe p (spread)": rows.spread_p.round(2),
    }).reset_index(drop=True)


def data_path_sentence(paths: pd.DataFrame) -> str:
    """One sentence from :func:`data_path_comparison` (its first order): forgetting and ACA, device
    minus loader, seed-paired, with the 95 % intervals and the tests of mean and spread."""
    if paths.empty:
        return "(the check ran one data path: nothing to compare)"
    rows = paths[paths.order == paths.order.iloc[0]].set_index("metric")
    f = rows.loc["forgetting"]
    text = (f"Device minus loader on {int(f.paired_seeds)} seed-paired runs: forgetting {f.difference:+.1f} points "
            f"(95 % interval [{f.difference_low:.1f}, {f.difference_high:.1f}]; device {f.device_mean:.1f} ± "
            f"{f.device_std:.1f}, loader {f.loader_mean:.1f} ± {f.loader_std:.1f}; Welch p = {f.welch_p:.2f}, "
            f"Brown-Forsythe p = {f.spread_p:.2f} for the spread)")
    if "aca" in rows.index:
        a = rows.loc["aca"]
        text += f", ACA {a.difference:+.1f} [{a.difference_low:.1f}, {a.difference_high:.1f}]"
    return text + "."


__all__ = [
    "EPOCHS", "FIXED_STREAM", "MODES", "NEWER_FIDELITY", "RECORDED_FIDELITY", "STRATEGIES", "FidelityRun", "RecordedFidelity",
    "UpdatedFidelity", "with_newer_runs",
    "agreement", "check_against_authors", "data_path_comparison", "data_path_sentence", "data_path_summary",
    "drift_rows", "drift_summary", "drift_table", "fidelity_config", "fidelity_plan", "fidelity_table", "for_display",
    "init_effect", "load_recorded", "mean_of", "run_fidelity", "run_quick",
]
