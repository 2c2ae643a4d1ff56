"""Tables, ratios and the figure of ``python -m benchmarks.speed`` (one row per configuration)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.speed_cases import Case, model_name  # noqa: E402

KEYS = ["section", "model", "method", "allocator", "experience", "batch", "option"]
COLUMNS = KEYS + ["threads", "device", "reps", "img_s", "img_s_min", "img_s_max", "ms", "peak_mib", "setup_mib",
                  "over_per_sample", "over_per_sample_tuned", "over_ceiling", "ratio", "ratio_is", "compile_s", "note"]
METHOD_ORDER = ["phn", "per-sample", "per-sample (tuned malloc)", "ceiling"]


def method_label(method: str, allocator: str) -> str:
    return method if allocator == "default" else f"{method} ({allocator} malloc)"


def aggregate(reps: pd.DataFrame, memory: Mapping[str, Mapping[str, float]], notes: Mapping[str, str],
              untimed: Sequence[Case], threads: int, device: str) -> pd.DataFrame:
    """Median over repetitions per configuration, memory, and the ratio columns.

    Args:
        reps: one row per timed repetition: ``KEYS`` + ``label``, ``seconds`` (per step), ``images``.
        memory: label -> {``peak_mib``, ``setup_mib``} (child processes).
        notes: label -> note (e.g. "not available").
        untimed: cases that were not timed: rows holding only their note.
    """
    rows = []
    for label, group in (reps.groupby("label", sort=False) if len(reps) else []):
        first = group.iloc[0]
        median, fastest, slowest = group.seconds.median(), group.seconds.min(), group.seconds.max()
        images = int(first.images)
        row = {k: first[k] for k in KEYS} | {"label": label, "reps": len(group), "ms": 1e3 * median}
        if images:
            row |= {"img_s": images / median, "img_s_min": images / slowest, "img_s_max": images / fastest}
        rows.append(row | dict(memory.get(label, {})) | ({"note": notes[label]} if label in notes else {}))
    rows += [case_fields(case) | {"label": case.label, "reps": 0, "note": notes.get(case.label, "")}
             for case in untimed]
    table = pd.DataFrame(rows).reindex(columns=COLUMNS + ["label"])
    table["threads"], table["device"] = threads, device
    for text in ("ratio_is", "note"):
        table[text] = table[text].astype(object)
    _train_ratios(table)
    _section_ratios(table)
    return table


def case_fields(case: Case) -> dict:
    """The ``KEYS`` of a case's rows (model as HN-k)."""
    return {"section": case.section, "model": model_name(case.model) if case.model >= 0 else "", "method": case.method,
            "allocator": case.allocator, "experience": case.experience, "batch": case.batch, "option": case.option}


def _train_ratios(table: pd.DataFrame) -> None:
    train = table.section == "train"
    for _, group in table[train].groupby(["model", "experience", "batch"]):
        speed = {method_label(r.method, r.allocator): r.img_s for r in group.itertuples()}
        for column, ref in (("over_per_sample", "per-sample"), ("over_per_sample_tuned", "per-sample (tuned malloc)"),
                            ("over_ceiling", "ceiling")):
            if ref in speed:
                table.loc[group.index, column] = group.img_s / speed[ref]


def _section_ratios(table: pd.DataFrame) -> None:
    """``ratio``: each row's ``value`` over that of the reference row of its group."""

    def relative(section: str, by: list[str], ref_col: str, ref_val: str, value: str, text: str) -> None:
        for _, group in table[table.section == section].groupby(by):
            ref = group[group[ref_col] == ref_val]
            if len(ref):
                table.loc[group.index, "ratio"] = group[value] / ref[value].iloc[0]
                table.loc[group.index, "ratio_is"] = text

    relative("lookahead", ["model"], "option", "none", "ms", "step time / look-ahead none")
    relative("regulariser", ["model", "method"], "option", "1", "ms", "time / time at 1 earlier task")
    relative("data", ["batch", "option"], "method", "dataloader", "img_s", "images/s / per-sample DataLoader")


def compile_rows(results: Mapping[str, Mapping[str, float]], cases: Mapping[str, Case], summaries: Mapping[str, str],
                 threads: int, device: str) -> pd.DataFrame:
    """Two rows (eager, compiled) per compile configuration; ratio = eager / compiled step time."""
    rows = []
    for label, res in results.items():
        case = cases[label]
        base = case_fields(case) | {"threads": threads, "device": device, "compile_s": res["compile_s"],
                                    "note": summaries[label]}
        for kind in ("eager", "compiled"):
            seconds = res[f"{kind}_s"]
            rows.append(base | {"method": f"{case.method} {kind}", "ms": 1e3 * seconds,
                                "img_s": case.batch / seconds, "label": f"{label} / {kind}",
                                "ratio": res["eager_s"] / seconds, "ratio_is": "speed-up (eager / this step time)"})
    return pd.DataFrame(rows).reindex(columns=COLUMNS + ["label"])


def _fmt(value: float, digits: int = 0) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def _shown(part: pd.DataFrame, columns: Mapping[str, str], digits: Mapping[str, int]) -> str:
    shown = part[list(columns)].copy()
    for column, n in digits.items():
        if column in shown:
            shown[column] = shown[column].map(lambda v, n=n: _fmt(v, n))
    if "note" in shown:
        shown["note"] = shown["note"].fillna("")
    return shown.rename(columns=dict(columns)).to_markdown(index=False)


def _memory(row) -> str:
    """'peak (+ what the steps added)' in MiB."""
    if row is None or math.isnan(row.peak_mib):
        return ""
    return f"{row.peak_mib:,.0f} (+{row.peak_mib - row.setup_mib:,.0f})"


def markdown(table: pd.DataFrame) -> str:
    """The printed report: one table per section."""
    out = []
    train = table[table.section == "train"]
    if len(train):
        rows = []
        for (model, exp, batch), g in train.groupby(["model", "experience", "batch"], sort=False):
            by = {method_label(r.method, r.allocator): r for r in g.itertuples()}
            phn = by.get("phn")
            row = {"model": model, "exp": int(exp), "batch": int(batch)}
            row |= {f"{m} img/s": _fmt(by[m].img_s) if m in by else "" for m in METHOD_ORDER}
            if phn is not None:
                row |= {"phn / per-sample": _fmt(phn.over_per_sample, 2),
                        "phn / tuned": _fmt(phn.over_per_sample_tuned, 2), "phn / ceiling": _fmt(phn.over_ceiling, 2)}
            row |= {f"{m} MiB": _memory(by.get(m)) for m in METHOD_ORDER}
            rows.append(row)
        out.append("## Training step\n\nimg/s: median over repetitions; MiB: peak of a child process running only that "
                   "configuration (+ what its steps added to the set-up's peak)\n\n"
                   + pd.DataFrame(rows).to_markdown(index=False))
    part = table[table.section == "lookahead"]
    if len(part):
        out.append("## Look-ahead order (training step)\n\n" + _shown(
            part, {"model": "model", "experience": "exp", "batch": "batch", "option": "look-ahead", "ms": "ms",
                   "img_s": "img/s", "peak_mib": "peak MiB", "ratio": "time / none"},
            {"ms": 1, "img_s": 0, "peak_mib": 0, "ratio": 2}))
    part = table[table.section == "regulariser"]
    if len(part):
        rows = []
        for (model, n), g in part.groupby(["model", "option"], sort=False):
            by = {r.method: r for r in g.itertuples()}
            row = {"model": model, "earlier tasks": int(n)}
            row |= {f"{m} ms": _fmt(by[m].ms, 1) if m in by else "" for m in ("batched", "loop", "snapshot-loop")}
            row |= {f"{m} / at 1 task": _fmt(by[m].ratio, 2) if m in by else "" for m in ("batched", "loop")}
            if "batched" in by and "loop" in by:
                row["loop / batched"] = _fmt(by["loop"].ms / by["batched"].ms, 2)
            rows.append(row)
        out.append("## Regulariser alone: R (Eq. 7) and its gradient, ms per call\n\n"
                   + pd.DataFrame(rows).to_markdown(index=False))
    part = table[table.section == "data"]
    if len(part):
        out.append("## Data path: images delivered per second over one epoch of one experience\n\n" + _shown(
            part, {"batch": "batch", "option": "epoch", "method": "method", "img_s": "img/s", "ms": "ms per epoch",
                   "ratio": "vs DataLoader", "note": "note"}, {"img_s": 0, "ms": 1, "ratio": 2}))
    part = table[table.section == "compile"]
    if len(part):
        out.append("## torch.compile (training step; compile time with an empty cache, and a typical run, in the note)"
                   "\n\n" + _shown(
            part, {"model": "model", "method": "method", "batch": "batch", "ms": "ms", "img_s": "img/s",
                   "ratio": "speed-up", "compile_s": "compile s (cold)", "note": "note"},
            {"ms": 1, "img_s": 0, "ratio": 2, "compile_s": 1}))
    return "\n\n".join(out)


GOALS = {
    "ceiling": 0.85,  # every HN-k at least 0.85x its plain-network ceiling, experiences 2 and 20
    "per_sample_exp2": 5.0,  # HN-2 and HN-F at least 5x the per-sample path at experience 2 ...
    "per_sample_late": 10.0,  # ... and 10x at experience 20
    "regulariser": 3.0,  # the regulariser at 20 earlier tasks at most 3x its cost at 1
    "data": 10.0,  # the batched data path at least 10x the per-sample DataLoader
}


def goals(table: pd.DataFrame) -> pd.DataFrame:
    """Issue 12's goals against a benchmark table (:func:`aggregate`): one row per measured case with
    ``goal``, ``case``, ``measured`` (the ratio), ``target`` and ``met``.

    The per-sample goal is judged against the FASTER of the per-sample path's two allocator settings
    where both were measured (the stricter comparison). Rows appear only for what the table holds.
    """
    rows = []
    train = table[(table.section == "train") & (table.method == "phn")]
    for r in train.itertuples():
        case = f"{r.model}, exp {int(r.experience)}, batch {int(r.batch)}"
        if not math.isnan(r.over_ceiling):
            rows.append({"goal": "phn / plain-network ceiling", "case": case, "measured": r.over_ceiling,
                         "target": f">= {GOALS['ceiling']}", "met": r.over_ceiling >= GOALS["ceiling"]})
        if r.model in ("HN-2", "HN-F"):
            ratios = [v for v in (r.over_per_sample, r.over_per_sample_tuned) if not math.isnan(v)]
            if ratios:
                target = GOALS["per_sample_exp2"] if int(r.experience) <= 2 else GOALS["per_sample_late"]
                rows.append({"goal": "phn / per-sample path (the faster allocator)", "case": case,
                             "measured": min(ratios), "target": f">= {target:g}", "met": min(ratios) >= target})
    reg = table[(table.section == "regulariser") & (table.method == "batched")]
    if len(reg):
        last = str(max(reg.option.astype(int)))
        for r in reg[reg.option == last].itertuples():
            rows.append({"goal": f"regulariser at {last} earlier tasks / at 1", "case": r.model, "measured": r.ratio,
                         "target": f"<= {GOALS['regulariser']:g}", "met": r.ratio <= GOALS["regulariser"]})
    data = table[(table.section == "data") & (table.method != "dataloader")]
    for r in data.itertuples():
        rows.append({"goal": "batched data path / per-sample DataLoader", "case": f"{r.method}, batch {int(r.batch)}",
                     "measured": r.ratio, "target": f">= {GOALS['data']:g}", "met": r.ratio >= GOALS["data"]})
    return pd.DataFrame(rows, columns=["goal", "case", "measured", "target", "met"])


def load_recorded(folder) -> tuple[pd.DataFrame, dict]:
    """A recorded benchmark folder (``speed.csv``, ``speed.json``, optionally ``compile.csv``): the
    table (the compile trial's rows appended) and the machine's metadata."""
    import json
    from pathlib import Path

    folder = Path(folder)
    parts = [pd.read_csv(folder / name).rename(columns={"config": "label"})
             for name in ("speed.csv", "compile.csv") if (folder / name).is_file()]
    return pd.concat(parts, ignore_index=True), json.loads((folder / "speed.json").read_text())


def plain_img_s(table: pd.DataFrame) -> float | None:
    """The machine's unit (:mod:`phn.machine`): the ceiling of HN-F, the whole plain slim ResNet-18, at
    batch 64 and experience 2, in training img/s; None where the table did not measure it."""
    rows = table[(table.get("section") == "train") & (table.get("model") == "HN-F") & (table.get("method") == "ceiling")
                 & (table.get("batch") == 64) & (table.get("experience") == 2)] if "section" in table else table.iloc[:0]
    return float(rows.img_s.iloc[0]) if len(rows) else None


def machine_line(meta: Mapping, unit_img_s: float | None = None) -> str:
    """Where, when, from which commit and with which command a benchmark was measured (markdown);
    ``unit_img_s`` (:func:`plain_img_s`) puts the machine's plain-network speed beside its time."""
    where = f"{meta['gpu']} (device {meta['device']})" if meta.get("gpu") else f"{meta['cpu']}, {meta['cores']} cores"
    sizes = "**QUICK sizes: a check of the command, not a measurement**" if meta.get("quick") else (
        f"{meta['reps']} repetitions x {meta['steps']} steps after {meta['warmup']} warm-up steps")
    return (f"**{where}**, {meta['threads']} torch threads, torch {meta['torch']}, "
            f"{'bf16 autocast for phn and the ceiling, ' if meta.get('amp') else ''}measured {meta['date']} "
            f"in {meta['seconds'] / 60:.0f} min"
            f"{f' (plain slim ResNet-18: {unit_img_s:,.0f} img/s)' if unit_img_s else ''} at commit `{meta['commit'][:10]}`"
            f"{' plus uncommitted changes' if meta.get('uncommitted_changes') else ''}; {sizes}.\n\n"
            f"Command: `{meta['command']}`")


def goals_markdown(table: pd.DataFrame, device: str) -> str:
    """:func:`goals` as a markdown section ('' when the table holds none of the goals' cases)."""
    checked = goals(table)
    if not len(checked):
        return ""
    shown = checked.assign(measured=checked.measured.map(lambda v: f"{v:.2f}"),
                           met=checked.met.map({True: "met", False: "MISSED"}))
    scope = "" if device == "cpu" else (" (the goals were set for the 2-core CPU; on this device they are shown for "
                                        "comparison only)")
    return f"#### Goals{scope}\n\n" + shown.to_markdown(index=False)


def figure_png(table: pd.DataFrame, dpi: int = 100) -> bytes:
    """:func:`figure` as PNG bytes (the figure is closed)."""
    import io

    fig = figure(table)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def figure(table: pd.DataFrame) -> plt.Figure:
    """Training throughput by method (log scale), regulariser cost vs earlier tasks, look-ahead, data path."""
    sections = [s for s in ("train", "regulariser", "lookahead", "data") if (table.section == s).any()]
    cols = 2 if len(sections) > 1 else 1
    rows = math.ceil(max(len(sections), 1) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4.4 * rows), squeeze=False)
    for ax, section in zip(axes.flat, sections, strict=False):
        part = table[table.section == section]
        if section == "train":
            _train_panel(ax, part)
        elif section == "regulariser":
            for (model, method), g in part.groupby(["model", "method"], sort=False):
                g = g.sort_values("option", key=lambda s: s.astype(int))
                ax.plot(g.option.astype(int), g.ms, marker="o", label=f"{model} {method}",
                        color={"HN-4": "tab:blue", "HN-2": "tab:orange", "HN-F": "tab:green"}.get(model),
                        linestyle={"batched": "-", "loop": "--", "snapshot-loop": ":"}.get(method, "-"))
            ax.set_xticks(sorted(part.option.astype(int).unique()))
            ax.set_yscale("log")
            ax.set_xlabel("earlier tasks")
            ax.set_ylabel("ms per call (R + gradient)")
            ax.set_title("Regulariser alone: batched (phn), loop, snapshot loop (authors)")
        elif section == "lookahead":
            models = list(dict.fromkeys(part.model))
            for i, order in enumerate(("none", "first", "second")):
                sel = part[part.option == order].set_index("model").reindex(models)
                ax.bar(np.arange(len(models)) + i * 0.27, sel.ms, 0.27, label=order)
            ax.set_xticks(np.arange(len(models)) + 0.27, models)
            ax.set_ylabel("ms per training step")
            ax.set_title(f"Look-ahead order (exp {int(part.experience.iloc[0])}, batch {int(part.batch.iloc[0])})")
        else:
            labels = [f"{m}\nbatch {int(b)}" for m, b in zip(part.method, part.batch, strict=True)]
            ax.bar(np.arange(len(part)), part.img_s.fillna(0), color="tab:gray")
            ax.set_xticks(np.arange(len(part)), labels, fontsize=7)
            ax.set_yscale("log")
            ax.set_ylabel("images / s delivered")
            ax.set_title("Data path")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(sections):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def _train_panel(ax: plt.Axes, part: pd.DataFrame) -> None:
    batch = part.batch.min()
    part = part[part.batch == batch]
    labels = [method_label(a, b) for a, b in zip(part.method, part.allocator, strict=True)]
    groups = list(dict.fromkeys(f"{m}\nexp {int(e)}" for m, e in zip(part.model, part.experience, strict=True)))
    methods = [m for m in METHOD_ORDER if m in labels]
    width = 0.8 / max(len(methods), 1)
    for i, method in enumerate(methods):
        sel = part[[label == method for label in labels]]
        values = {f"{m}\nexp {int(e)}": v for m, e, v in zip(sel.model, sel.experience, sel.img_s, strict=True)}
        ax.bar(np.arange(len(groups)) + i * width, [values.get(g, np.nan) for g in groups], width, label=method)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, groups, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("images / s")
    ax.set_title(f"Training step, batch {int(batch)}")


__all__ = ["COLUMNS", "GOALS", "KEYS", "aggregate", "case_fields", "compile_rows", "figure", "figure_png", "goals",
           "goals_markdown", "load_recorded", "machine_line", "markdown", "method_label", "plain_img_s"]
