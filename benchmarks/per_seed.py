"""Per-seed learning accuracy, ACA and forgetting of the finished runs in a run cache, as Markdown tables.

The recorded ledgers' READMEs quote each chapter's runs seed by seed (a verdict's interval says little
without them). This is the command that computes those tables from the runs themselves::

    .venv/bin/python -m benchmarks.per_seed runs --where stream.name=split-fashionmnist train.epochs=8 \\
        --seeds 3 4 5

Each finished run directory (``complete.json``; a run cut off is skipped) is read with
:meth:`phn.results.Results.load` and summarised by :func:`phn.metrics.summary`. Runs are grouped by
every setting except the seeds (``stream.seed``, ``train.seed``) and the strategy's name and freeze depth,
which make the row label (``RunConfig.label``: Naive, LR-4, HN-F, ...). A group's heading lists the
settings in which it differs from the other groups; a cell is ``learning accuracy / ACA / forgetting``
in percent.

"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

SEED_KEYS = ("stream.seed", "train.seed")
LABEL_KEYS = ("strategy.name", "model.freeze_depth")
RECORDED = ("versions", "code", "data", "start_from")  # what a run records, not a setting of it
METRICS = ("learning_accuracy", "aca", "forgetting")


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"epochs": 8}}`` -> ``{"train.epochs": 8}``; lists become tuples (hashable)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = tuple(value) if isinstance(value, list) else value
    return flat


def parse_where(items: Iterable[str]) -> dict[str, Any]:
    """``["train.epochs=8"]`` -> ``{"train.epochs": 8}`` (values read as JSON where they parse, else text)."""
    where: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--where takes KEY=VALUE (e.g. train.epochs=8), got {item!r}")
        try:
            where[key] = json.loads(text)
        except json.JSONDecodeError:
            where[key] = text
    return where


def run_rows(runs: Path) -> pd.DataFrame:
    """One row per finished run under ``runs``: its flattened settings, ``label``, ``seed`` and the
    three metrics (percent)."""
    from phn.config import RunConfig, from_dict
    from phn.metrics import summary
    from phn.results import Results
    from phn.rundir import MARKER

    rows = []
    for marker in sorted(runs.glob(f"*/{MARKER}")):
        res = Results.load(marker.parent)
        settings = {k: v for k, v in res.config.items() if k not in RECORDED}
        flat = flatten(settings)
        rows.append({**flat, "label": from_dict(RunConfig, settings).label, "seed": flat["train.seed"],
                     "run": marker.parent.name, **summary(res.acc)})
    return pd.DataFrame(rows)


def per_seed_tables(rows: pd.DataFrame, where: Mapping[str, Any] | None = None,
                    seeds: Sequence[int] | None = None) -> list[tuple[str, pd.DataFrame]]:
    """The runs matching ``where`` (and ``seeds``), one ``(heading, table)`` per group of settings; a
    table has one row per label and one column per seed, each cell ``"LA / ACA / F"``."""
    if rows.empty:
        return []
    for key, value in (where or {}).items():
        if key not in rows:
            raise SystemExit(f"no setting {key!r}; settings are e.g. {', '.join(sorted(rows.columns)[:6])}, ...")
        rows = rows[rows[key].map(lambda v, value=value: v == value or str(v) == str(value))]
    if seeds is not None:
        rows = rows[rows["seed"].isin(list(seeds))]
    if rows.empty:
        return []
    fixed = {"label", "seed", "run", *METRICS, *SEED_KEYS, *LABEL_KEYS}
    settings = [c for c in rows.columns if c not in fixed]
    varying = [c for c in settings if rows[c].astype(str).nunique() > 1]
    tables = []
    groups = rows.groupby([rows[c].astype(str) for c in varying], sort=True) if varying else [((), rows)]
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        heading = ", ".join(f"{c}={v}" for c, v in zip(varying, key)) or "all runs"
        cells = group.assign(cell=group.apply(
            lambda r: f"{r.learning_accuracy:.1f} / {r.aca:.1f} / {r.forgetting:.1f}", axis=1))
        table = cells.pivot_table(index="label", columns="seed", values="cell", aggfunc="first")
        table.columns = [f"seed {s}" for s in table.columns]
        tables.append((heading, table.sort_index(key=lambda idx: idx.map(_label_order))))
    return tables


def _label_order(label: str) -> tuple[int, int]:
    family, _, depth = label.partition("-")
    rank = {"Naive": 0, "EWC": 1, "LR": 2, "HN": 3}.get(family, 4)
    return rank, (99 if depth == "F" else int(depth) if depth.isdigit() else 0)


def to_markdown(tables: Sequence[tuple[str, pd.DataFrame]]) -> str:
    """The tables as Markdown, each under its heading."""
    if not tables:
        return "No finished runs match.\n"
    parts = []
    for heading, table in tables:
        lines = [f"**{heading}** (learning accuracy / ACA / forgetting, %)", "",
                 "| strategy | " + " | ".join(table.columns) + " |", "|---" * (len(table.columns) + 1) + "|"]
        lines += [f"| {label} | " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |"
                  for label, row in table.iterrows()]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, help="a run cache, e.g. runs")
    parser.add_argument("--where", nargs="+", default=[], metavar="KEY=VALUE",
                        help="keep runs with these settings, e.g. stream.name=split-fashionmnist train.epochs=8")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="keep these seeds only")
    args = parser.parse_args(argv)
    if not args.runs.is_dir():
        raise SystemExit(f"{args.runs} is not a folder of runs")
    text = to_markdown(per_seed_tables(run_rows(args.runs), parse_where(args.where), args.seeds))
    print(text, end="")
    return text


if __name__ == "__main__":
    main()
