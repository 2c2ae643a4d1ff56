"""Several strategies on the same stream: the building block of every comparison in the paper."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from phn.config import RunConfig, from_dict, to_dict
from phn.results import Results
from phn.train import run_config, run_dir_for


def with_overrides(base: RunConfig, overrides: Mapping[str, Mapping[str, Any]]) -> RunConfig:
    """``base`` with some fields of its sections replaced, e.g. ``{"model": {"freeze_depth": 2}}``."""
    values = to_dict(base)
    for section, fields in overrides.items():
        if section not in values:
            raise ValueError(f"unknown config section {section!r}; known: {sorted(values)}")
        values[section] = {**values[section], **fields}
    return from_dict(RunConfig, values)


@dataclasses.dataclass
class Comparison:
    """Tidy outcome of :func:`compare`.

    Attributes:
        summary: one row per strategy: ACA, learning accuracy, forgetting (percent), train time (s),
            parameters, stored floats.
        per_experience: one row per (strategy, experience).
        matrices: strategy label -> accuracy matrix (N, N).
        results: strategy label -> full :class:`~phn.results.Results`.
    """

    summary: pd.DataFrame
    per_experience: pd.DataFrame
    matrices: dict[str, np.ndarray]
    results: dict[str, Results]


def compare(base: RunConfig, variants: Sequence[Mapping[str, Mapping[str, Any]]], use_cache: bool = True,
            progress: bool | None = None) -> Comparison:
    """Run ``base`` with each variant's overrides (results cached under ``run_dir_for``).

    Example:
        >>> compare(cfg, [{"strategy": {"name": "hn"}}, {"strategy": {"name": "lr"}}])  # doctest: +SKIP
    """
    summaries, rows, matrices, all_results = [], [], {}, {}
    for overrides in variants:
        cfg = with_overrides(base, overrides)
        results = run_config(cfg, resume=True, out_dir=run_dir_for(cfg), use_cache=use_cache, progress=progress)
        label = cfg.label
        summaries.append({"strategy": label, **results.summary()})
        rows.append(results.per_experience().assign(strategy=label))
        matrices[label], all_results[label] = results.acc, results
    return Comparison(pd.DataFrame(summaries), pd.concat(rows, ignore_index=True), matrices, all_results)
