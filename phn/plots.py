"""Figures shared by the notebooks (matplotlib / seaborn), each returning its ``Figure``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch


def accuracy_heatmaps(matrices: Mapping[str, np.ndarray], title: str | None = None) -> plt.Figure:
    """One heatmap per strategy of ``acc[i, j]`` (percent): rows = after training experience i,
    columns = test experience j; untested cells (j > i) stay blank."""
    n = len(matrices)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.2), squeeze=False, constrained_layout=True)
    for ax, (label, acc) in zip(axes[0], matrices.items(), strict=True):
        size = acc.shape[0]
        sns.heatmap(100 * acc, ax=ax, vmin=0, vmax=100, annot=size <= 10, fmt=".0f", cmap="viridis",
                    cbar=False, square=True, xticklabels=range(1, size + 1), yticklabels=range(1, size + 1))
        ax.set(title=label, xlabel="test experience j", ylabel="after training experience i")
    if title:
        fig.suptitle(title)
    return fig


def summary_bars(table: pd.DataFrame, metrics: tuple[str, ...] = ("aca", "learning_accuracy", "forgetting")) -> plt.Figure:
    """Grouped bars of summary metrics (percent) per strategy; ``table`` has a ``strategy`` column."""
    long = table.melt(id_vars="strategy", value_vars=list(metrics), var_name="metric", value_name="percent")
    fig, ax = plt.subplots(figsize=(6, 3.2), constrained_layout=True)
    sns.barplot(long, x="metric", y="percent", hue="strategy", ax=ax)
    ax.set(xlabel="", ylabel="%")
    return fig


def save_figure(fig: plt.Figure, name: str, folder: str | os.PathLike | None = None) -> Path:
    """Save ``fig`` as ``<folder>/<name>.png`` (default folder: ``<runs dir>/figures``); returns the path."""
    from phn.train import runs_dir

    path = Path(folder or runs_dir() / "figures") / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def freeze_depth_lines(summary: pd.DataFrame, labels: Mapping[str, str] | None = None) -> plt.Figure:
    """Figure 4: accuracy on experience 2 (mean ± std over seeds) against the freeze depth k, one panel
    per stream, one line per strategy. ``summary``: columns pair, strategy, depth, mean, std."""
    pairs = list(dict.fromkeys(summary.pair))
    fig, axes = plt.subplots(1, len(pairs), figsize=(3.4 * len(pairs), 3.0), squeeze=False, sharey=True,
                             constrained_layout=True)
    for ax, pair in zip(axes[0], pairs, strict=True):
        for strategy, group in summary[summary.pair == pair].groupby("strategy", sort=False):
            group = group.sort_values("depth")
            ax.errorbar(group.depth, group["mean"], yerr=group["std"], marker="o", capsize=3,
                        label=(labels or {}).get(strategy, strategy))
        first, _, second = pair.partition("->")
        ax.set(title=f"{first} → {second}", xlabel="freeze depth k", xticks=sorted(summary.depth.unique()))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy on experience 2 (%)")
    axes[0][-1].legend(fontsize="small")
    return fig


def image_rows(rows: Mapping[str, torch.Tensor], title: str | None = None) -> plt.Figure:
    """One row of images per entry (Figure 5): ``rows`` maps a row label to float images
    (n, 3, H, W) in [0, 1]."""
    n = max(len(images) for images in rows.values())
    fig, axes = plt.subplots(len(rows), n, figsize=(1.1 * n, 1.2 * len(rows)), squeeze=False,
                             constrained_layout=True)
    for r, (label, images) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(images):
                ax.imshow(images[c].permute(1, 2, 0).clamp(0, 1).numpy())
        axes[r][0].set_title(label, fontsize="small", loc="left")
    if title:
        fig.suptitle(title)
    return fig


def filter_grids(filters: Mapping[str, torch.Tensor], count: int = 32, title: str | None = None) -> plt.Figure:
    """Figure 6: the 3 x 3 kernels (input channel 0) of the first ``count`` output filters of a conv
    weight (C_out, C_in, 3, 3), one row of panels per entry of ``filters``; each kernel is scaled to
    its own range, so the picture shows shapes, not magnitudes."""
    fig, axes = plt.subplots(len(filters), 1, figsize=(0.42 * count, 1.1 * len(filters)), squeeze=False,
                             constrained_layout=True)
    for ax, (label, weight) in zip(axes[:, 0], filters.items(), strict=True):
        kernels = weight[:count, 0].float()  # (count, 3, 3)
        low = kernels.amin(dim=(1, 2), keepdim=True)
        span = (kernels.amax(dim=(1, 2), keepdim=True) - low).clamp_min(1e-12)
        tiles = ((kernels - low) / span).numpy()
        strip = np.concatenate([np.pad(t, ((0, 0), (0, 1)), constant_values=np.nan) for t in tiles], axis=1)
        ax.imshow(strip, cmap="gray", interpolation="nearest")
        ax.set_title(label, fontsize="small", loc="left")
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return fig


def first_experience_over_time(curves: pd.DataFrame) -> plt.Figure:
    """Figure 7 from :func:`phn.experiments.noise.first_experience_curves` (means over seeds):
    left, LR's accuracy on experience 1 on the normal vs the noisy stream; middle, LR vs HN accuracy
    on the noisy stream; right, LR vs HN forgetting of experience 1 on the noisy stream. One colour
    per freeze depth; x is the training step over the whole stream."""
    mean = curves.groupby(["stream", "strategy", "model", "depth", "global_step"], sort=False)[
        ["accuracy", "forgetting"]].mean().reset_index()
    depths = sorted(mean.depth.unique())
    colours = dict(zip(depths, sns.color_palette("deep", len(depths)), strict=True))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), constrained_layout=True)
    panels = [
        (axes[0], "accuracy", [("lr", "normal", ":"), ("lr", "noisy", "-")], "LR (c = 1): normal vs noisy"),
        (axes[1], "accuracy", [("lr", "noisy", "-"), ("hn", "noisy", "--")], "noisy stream: LR vs HN"),
        (axes[2], "forgetting", [("lr", "noisy", "-"), ("hn", "noisy", "--")], "noisy stream: forgetting"),
    ]
    for ax, column, series, title in panels:
        for strategy, stream, style in series:
            for depth in depths:
                line = mean[(mean.strategy == strategy) & (mean.stream == stream) & (mean.depth == depth)]
                if line.empty:
                    continue
                ax.plot(line.global_step, line[column], style, color=colours[depth],
                        label=f"{line.model.iloc[0]} {stream}")
        ax.set(title=title, xlabel="training step", ylabel=f"experience 1 {column} (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small", ncol=2)
    return fig


def experiences_over_time(curves: pd.DataFrame, title: str | None = None) -> plt.Figure:
    """Figure 8 from :func:`phn.experiments.benchmarks.experience_curves`: one panel per experience
    (1, 2, 3), its test accuracy over the training steps of the whole stream, one line per model
    (mean over seeds). Dotted verticals mark where a new experience starts."""
    mean = curves.groupby(["model", "experience", "global_step"], sort=False).accuracy.mean().reset_index()
    starts = curves.groupby("trained_experience").global_step.min().iloc[1:]
    experiences = sorted(mean.experience.unique())
    fig, axes = plt.subplots(1, len(experiences), figsize=(4.3 * len(experiences), 3.3), sharey=True,
                             constrained_layout=True, squeeze=False)
    for ax, experience in zip(axes[0], experiences, strict=True):
        sns.lineplot(data=mean[mean.experience == experience], x="global_step", y="accuracy", hue="model",
                     style="model", ax=ax, legend=experience == experiences[0])
        for step in starts:
            ax.axvline(step, color="grey", linestyle=":", linewidth=0.8)
        ax.set(title=f"experience {experience}", xlabel="training step", ylabel="test accuracy (%)")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def cosine_first_epoch(steps: pd.DataFrame, smoothing: int = 1, title: str | None = None) -> plt.Figure:
    """Figure 12: cos(g1, g2) over the steps of one epoch, one line per seed (rolling mean over
    ``smoothing`` steps); the zero line dashed."""
    fig, ax = plt.subplots(figsize=(6, 3.2), constrained_layout=True)
    for seed, group in steps.groupby("seed"):
        ax.plot(group.step, group.cos.rolling(smoothing, min_periods=1).mean(), label=f"seed {seed}")
    ax.axhline(0, color="black", linestyle="--", linewidth=0.8)
    ax.set(xlabel="step", ylabel=r"$\cos(g_1, g_2)$", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def cosine_by_experience(steps: pd.DataFrame, smoothing: int = 10) -> plt.Figure:
    """cos(g1, g2) over the steps of each experience after the first: one panel per model, one colour
    per experience; thin lines are the per-step means over seeds, thick ones their rolling mean over
    ``smoothing`` steps."""
    mean = steps.groupby(["model", "experience", "step"], sort=False).cos.mean().reset_index()
    models = list(mean.model.unique())
    experiences = sorted(mean.experience.unique())
    colours = dict(zip(experiences, sns.color_palette("deep", len(experiences)), strict=True))
    fig, axes = plt.subplots(1, len(models), figsize=(5.2 * len(models), 3.3), sharey=True, constrained_layout=True,
                             squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        for experience in experiences:
            line = mean[(mean.model == model) & (mean.experience == experience)]
            ax.plot(line.step, line.cos, color=colours[experience], alpha=0.25, linewidth=0.7)
            ax.plot(line.step, line.cos.rolling(smoothing, min_periods=1).mean(), color=colours[experience],
                    label=f"experience {experience}")
        ax.axhline(0, color="black", linestyle="--", linewidth=0.8)
        ax.set(title=model, xlabel="step within the experience", ylabel=r"$\cos(g_1, g_2)$")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    return fig


def convergence_lines(study: pd.DataFrame, chance: float | None = None) -> plt.Figure:
    """The sizing study: mean learning accuracy (percent) against Adam updates per experience (log
    scale), one line per strategy (mean over seeds, each seed a dot); baselines and LR-k on the left,
    the hypernetworks on the right. ``study``: :func:`phn.experiments.convergence.run_convergence`."""
    groups = {"Naive, EWC and latent replay": study[~study.strategy.str.startswith("HN")],
              "partial hypernetworks": study[study.strategy.str.startswith("HN")]}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True, constrained_layout=True)
    for ax, (title, part) in zip(axes, groups.items(), strict=True):
        for label, group in part.groupby("strategy", sort=False):
            mean = group.groupby("updates_per_experience").learning_accuracy.mean()
            line, = ax.plot(mean.index, mean.values, marker="o", label=label)
            ax.scatter(group.updates_per_experience, group.learning_accuracy, s=10, color=line.get_color(), alpha=0.5)
        if chance is not None:
            ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label="chance")
        ax.set_xscale("log", base=2)
        ax.set(title=title, xlabel="Adam updates per experience", ylabel="learning accuracy (%)")
        ax.legend(fontsize="small", ncol=2)
    return fig
