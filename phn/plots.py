"""Figures shared by the notebooks (matplotlib / seaborn), each returning its ``Figure``."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns


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
