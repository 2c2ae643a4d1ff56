"""Numbers measured by others, quoted for comparison: never produced by ``phn``.

:func:`authors_release_fashionmnist`: the authors' public release (Avalanche 0.4 + functorch), run on
torch 2.14.1 on this project's fixed Split-FashionMNIST stream (5 x 2 classes in the order 0..9, the
first 1000 training images per class, 3 epochs, batch 64, Adam 1e-3, beta 0.5, seeds 0, 1, 2), as
recorded in ``shared/paper/READING-NOTES.md`` and the engine-fidelity issue. Orders (see
:func:`phn.train.evaluation_order`): ``"index"`` is their interleaved evaluation (test images in
ascending file index), ``"sorted"`` their pipeline's (Avalanche delivers test sets sorted by class).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# (strategy, order) -> ACA (%) per seed 0, 1, 2 where known, else the mean over those seeds alone.
_AUTHORS_ACA: dict[tuple[str, str], tuple[float, ...]] = {
    ("HN-4", "index"): (88.6, 92.5, 89.0),
    ("HN-4", "sorted"): (60.5,),
    ("HN-2", "index"): (93.7, 93.2, 92.2),
    ("HN-2", "sorted"): (91.7,),
    ("HN-F", "index"): (95.0,),
    ("HN-F", "sorted"): (95.0,),
    ("Naive", "index"): (88.1,),
    ("Naive", "sorted"): (58.4,),
}
# (strategy, order) -> forgetting (%) mean and std over seeds 0, 1, 2.
_AUTHORS_FORGETTING: dict[tuple[str, str], tuple[float, float]] = {("HN-4", "index"): (2.1, 0.9)}


def authors_release_fashionmnist() -> pd.DataFrame:
    """The authors' code on the fixed Split-FashionMNIST stream (module docstring), one row per
    (strategy, order): ``authors_aca`` (mean of 3 seeds), ``authors_aca_seeds`` (the per-seed values
    as text, where known), ``authors_forgetting`` and ``authors_forgetting_std`` (NaN where unknown)."""
    rows = []
    for (strategy, order), values in _AUTHORS_ACA.items():
        forgetting = _AUTHORS_FORGETTING.get((strategy, order), (np.nan, np.nan))
        rows.append({
            "strategy": strategy, "order": order,
            "authors_aca": round(float(np.mean(values)), 1),
            "authors_aca_seeds": " / ".join(f"{v:.1f}" for v in values) if len(values) > 1 else "",
            "authors_forgetting": forgetting[0], "authors_forgetting_std": forgetting[1],
        })
    return pd.DataFrame(rows)


# The paper's Table 2 (as decoded in shared/paper/READING-NOTES.md): strategy -> (ACA, std, forgetting,
# std, running time in minutes) for Split-CIFAR100 and Split-TinyImageNet.
_PAPER_TABLE2: dict[str, dict[str, tuple[float, float, float, float, int]]] = {
    "split-cifar100": {
        "Naive": (33.7, 0.7, 58.9, 2.1, 120), "EWC": (29.7, 1.0, 62.2, 0.9, 230), "LR-1": (48.1, 1.2, 43.0, 0.8, 165),
        "HN-1": (61.9, 1.7, 8.1, 0.6, 508), "LR-2": (51.1, 0.8, 40.3, 1.1, 134), "HN-2": (62.8, 1.6, 4.1, 0.5, 388),
        "LR-3": (50.1, 2.2, 42.4, 1.3, 111), "HN-3": (58.8, 1.0, 7.4, 0.9, 243), "LR-4": (51.4, 1.3, 27.3, 2.4, 89),
        "HN-4": (73.6, 0.9, 3.1, 0.4, 114), "HN-F": (64.2, 1.2, 5.5, 1.4, 636)},
    "split-tinyimagenet": {
        "Naive": (20.5, 1.7, 48.4, 0.9, 371), "EWC": (22.4, 1.1, 34.5, 0.5, 431), "LR-1": (30.6, 0.9, 38.1, 2.1, 323),
        "HN-1": (35.2, 0.3, 8.0, 1.4, 905), "LR-2": (30.0, 0.7, 38.8, 1.2, 245), "HN-2": (39.9, 0.4, 10.2, 2.2, 660),
        "LR-3": (26.5, 0.6, 36.9, 0.9, 204), "HN-3": (31.4, 1.8, 5.2, 0.7, 416), "LR-4": (31.8, 1.1, 25.9, 2.0, 143),
        "HN-4": (36.1, 1.1, 10.0, 1.1, 176), "HN-F": (39.9, 1.7, 7.2, 1.8, 1200)},
}
# The paper's Table 6: HN-k parameters (k = 0 is HN-F) and memory (MB); LR-k exemplar memory (MB) for
# CIFAR-100 (buffer 200, 32 x 32) and TinyImageNet (buffer 400, as printed: 64 x 64).
PAPER_TABLE6_HN: dict[int, tuple[int, float]] = {0: (1_272_877, 4.86), 1: (1_217_122, 4.64), 2: (1_119_522, 4.27),
                                                 3: (924_322, 3.53), 4: (533_922, 2.04)}
PAPER_TABLE6_LR_MB: dict[str, dict[int, float]] = {
    "split-cifar100": {0: 2.34, 1: 15.62, 2: 7.81, 3: 3.91, 4: 1.95},
    "split-tinyimagenet": {0: 18.75, 1: 125.0, 2: 62.50, 3: 31.25, 4: 15.62},
}


# The paper's Table 3: lookup dimension d -> (HN-F parameters with 10 outputs and 10 tasks, compression
# level in percent relative to d = 64, as printed).
PAPER_TABLE3: dict[int, tuple[int, int]] = {4: (451_661, 59), 8: (496_489, 55), 16: (586_145, 47), 32: (765_457, 31),
                                            64: (1_124_081, 0)}


def paper_table2(stream: str) -> pd.DataFrame | None:
    """The paper's Table 2 for ``stream`` (``"split-cifar100"`` or ``"split-tinyimagenet"``), one row per
    strategy: ``paper_aca``, ``paper_forgetting`` ("mean ± std" text) and ``paper_time`` (minutes on
    the authors' GPU, text); None for any other stream (the paper did not run it)."""
    table = _PAPER_TABLE2.get(stream)
    if table is None:
        return None
    return pd.DataFrame([{"strategy": name, "paper_aca": f"{a:.1f} ± {sa:.1f}", "paper_forgetting": f"{f:.1f} ± {sf:.1f}",
                          "paper_time": f"~{t} min"} for name, (a, sa, f, sf, t) in table.items()])


__all__ = ["PAPER_TABLE3", "PAPER_TABLE6_HN", "PAPER_TABLE6_LR_MB", "authors_release_fashionmnist", "paper_table2"]
