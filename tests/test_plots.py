import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd

from phn import plots


def test_accuracy_heatmaps_one_axis_per_strategy():
    acc = np.array([[0.9, np.nan], [0.8, 0.95]])
    fig = plots.accuracy_heatmaps({"HN-4": acc, "LR-4": acc})
    assert [ax.get_title() for ax in fig.axes] == ["HN-4", "LR-4"]


def test_summary_bars():
    table = pd.DataFrame({"strategy": ["HN-4", "LR-4"], "aca": [90, 80], "learning_accuracy": [95, 85],
                          "forgetting": [3, 10]})
    fig = plots.summary_bars(table)
    assert len(fig.axes[0].patches) >= 6
