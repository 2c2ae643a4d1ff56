"""Continual-learning metrics, each a function of the accuracy matrix.

``acc[i, j]`` is the test accuracy (in [0, 1]) on experience ``j`` after training experience ``i``;
entries with ``j > i`` are NaN (not evaluated). ``N = acc.shape[0]`` experiences.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _square(acc: np.ndarray) -> np.ndarray:
    acc = np.asarray(acc, dtype=float)
    if acc.ndim != 2 or acc.shape[0] != acc.shape[1] or acc.shape[0] == 0:
        raise ValueError(f"accuracy matrix must be square and non-empty, got shape {acc.shape}")
    return acc


def final_accuracies(acc: np.ndarray) -> np.ndarray:
    """Accuracy on every experience after the last one: ``acc[N-1, :]``, shape (N,)."""
    return _square(acc)[-1].copy()


def average_accuracy(acc: np.ndarray) -> float:
    """ACA (Section 2): mean over all experiences of the final test accuracy."""
    return float(np.mean(final_accuracies(acc)))


def learning_accuracies(acc: np.ndarray) -> np.ndarray:
    """Accuracy on each experience right after training it: the diagonal ``acc[i, i]``, shape (N,)."""
    return np.diag(_square(acc)).copy()


def learning_accuracy(acc: np.ndarray) -> float:
    """Mean learning accuracy over experiences."""
    return float(np.mean(learning_accuracies(acc)))


def forgettings(acc: np.ndarray) -> np.ndarray:
    """Forgetting of each experience, Avalanche's definition, shape (N,).

    For experience ``j`` it is the accuracy right after training it minus the final accuracy,
    ``acc[j, j] - acc[N-1, j]``. The last experience has not been followed by any training, so its
    entry is NaN (Avalanche reports forgetting only for experiences evaluated twice).
    """
    acc = _square(acc)
    out = np.diag(acc) - acc[-1]
    out[-1] = np.nan
    return out


def forgetting(acc: np.ndarray) -> float:
    """Stream forgetting: mean of :func:`forgettings` over experiences 1..N-1 (NaN when N = 1)."""
    values = forgettings(acc)[:-1]
    return float(np.mean(values)) if values.size else float("nan")


def summary(acc: np.ndarray) -> dict[str, float]:
    """ACA, learning accuracy and forgetting in percent."""
    return {
        "aca": 100 * average_accuracy(acc),
        "learning_accuracy": 100 * learning_accuracy(acc),
        "forgetting": 100 * forgetting(acc),
    }


def accuracy_table(acc: np.ndarray) -> pd.DataFrame:
    """Tidy long form of the matrix: columns ``trained_on``, ``evaluated_on``, ``accuracy``
    (evaluated entries only)."""
    acc = _square(acc)
    rows = [
        {"trained_on": i, "evaluated_on": j, "accuracy": float(acc[i, j])}
        for i in range(acc.shape[0])
        for j in range(acc.shape[1])
        if not np.isnan(acc[i, j])
    ]
    return pd.DataFrame(rows, columns=["trained_on", "evaluated_on", "accuracy"])


def accuracy_matrix(table: pd.DataFrame, num_experiences: int | None = None) -> np.ndarray:
    """Inverse of :func:`accuracy_table`."""
    n = num_experiences or int(max(table["trained_on"].max(), table["evaluated_on"].max()) + 1)
    acc = np.full((n, n), np.nan)
    for row in table.itertuples(index=False):
        acc[int(row.trained_on), int(row.evaluated_on)] = row.accuracy
    return acc
