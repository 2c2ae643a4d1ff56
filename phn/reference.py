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


__all__ = ["authors_release_fashionmnist"]
