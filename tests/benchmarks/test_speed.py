"""``python -m benchmarks.speed --quick`` runs every section and writes its CSV, tables and figure."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks import speed
from benchmarks.speed_cases import device_batches_class


def test_quick_run_writes_one_row_per_configuration(tmp_path: Path) -> None:
    # --no-memory: the tuned-allocator children still run (and report their peaks), in the round robin
    speed.main(["--quick", "--threads", "1", "--no-memory", "--out", str(tmp_path)])
    for name in ("speed.csv", "speed_reps.csv", "speed.md", "speed.png", "speed.svg", "speed.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    table = pd.read_csv(tmp_path / "speed.csv")
    assert set(table.section) == {"train", "lookahead", "regulariser", "data"}
    train = table[table.section == "train"].set_index(["method", "allocator"])
    assert len(train) == 4  # phn, per-sample (both allocators), ceiling: HN-2, experience 2, batch 4
    assert (train.img_s > 0).all() and (train.reps == 2).all()
    phn = train.loc[("phn", "default")]
    assert phn.over_per_sample == phn.img_s / train.loc[("per-sample", "default")].img_s
    assert phn.over_ceiling == phn.img_s / train.loc[("ceiling", "default")].img_s
    assert train.loc[("per-sample", "tuned")].peak_mib > 0  # measured in its own child process
    reps = pd.read_csv(tmp_path / "speed_reps.csv")
    assert list(reps.drop_duplicates("label").label) == list(reps[reps.rep == 2].label)  # round robin: same order
    assert len(table[table.section == "regulariser"]) == 6  # batched, loop, snapshot loop at 1 and 2 tasks
    data = table[table.section == "data"].set_index("method")
    if device_batches_class() is None:
        assert data.loc["device-batches"].note.startswith("not available")
    else:
        assert data.loc["device-batches"].img_s > 0
    assert "phn / ceiling" in (tmp_path / "speed.md").read_text()


def test_plan_covers_the_issue_configurations() -> None:
    args = speed.parse_args([])
    cases = speed.plan(args)
    train = [c for c in cases if c.section == "train"]
    assert {(c.model, c.experience, c.batch) for c in train} == {
        (k, e, b) for k in (4, 2, 0) for e in (2, 20) for b in (64, 128)}
    assert {(c.method, c.allocator) for c in train} == {
        ("phn", "default"), ("per-sample", "default"), ("per-sample", "tuned"), ("ceiling", "default")}
    assert {c.option for c in cases if c.section == "regulariser"} == {"1", "5", "10", "20"}
    assert {c.option for c in cases if c.section == "lookahead"} == {"none", "first", "second"}
    assert "compile" not in {c.section for c in cases}


def test_plan_on_cuda_leaves_out_the_glibc_allocator_rows() -> None:
    cases = speed.plan(speed.parse_args(["--device", "cuda"]))
    assert {c.allocator for c in cases if c.section == "train"} == {"default"}


def test_goals_against_a_hand_made_table() -> None:
    from benchmarks.speed_report import goals

    nan = float("nan")
    table = pd.DataFrame([
        # HN-4: 0.9x its ceiling (met); HN-2 at exp 20: 0.5x (missed), 12x / 8x the two per-sample variants
        {"section": "train", "method": "phn", "model": "HN-4", "experience": 2, "batch": 64, "over_ceiling": 0.9,
         "over_per_sample": 2.0, "over_per_sample_tuned": nan, "option": "", "ratio": nan},
        {"section": "train", "method": "phn", "model": "HN-2", "experience": 20, "batch": 64, "over_ceiling": 0.5,
         "over_per_sample": 12.0, "over_per_sample_tuned": 8.0, "option": "", "ratio": nan},
        {"section": "regulariser", "method": "batched", "model": "HN-2", "experience": 0, "batch": 0,
         "over_ceiling": nan, "over_per_sample": nan, "over_per_sample_tuned": nan, "option": "1", "ratio": 1.0},
        {"section": "regulariser", "method": "batched", "model": "HN-2", "experience": 0, "batch": 0,
         "over_ceiling": nan, "over_per_sample": nan, "over_per_sample_tuned": nan, "option": "20", "ratio": 2.5},
        {"section": "regulariser", "method": "loop", "model": "HN-2", "experience": 0, "batch": 0,
         "over_ceiling": nan, "over_per_sample": nan, "over_per_sample_tuned": nan, "option": "20", "ratio": 19.0},
        {"section": "data", "method": "dataloader", "model": "", "experience": 0, "batch": 64, "over_ceiling": nan,
         "over_per_sample": nan, "over_per_sample_tuned": nan, "option": "", "ratio": 1.0},
        {"section": "data", "method": "device-batches", "model": "", "experience": 0, "batch": 64,
         "over_ceiling": nan, "over_per_sample": nan, "over_per_sample_tuned": nan, "option": "", "ratio": 9.0},
    ])
    got = {(g.goal.split(" (")[0], g.case): (g.measured, g.met) for g in goals(table).itertuples()}
    assert got == {
        ("phn / plain-network ceiling", "HN-4, exp 2, batch 64"): (0.9, True),
        ("phn / plain-network ceiling", "HN-2, exp 20, batch 64"): (0.5, False),
        ("phn / per-sample path", "HN-2, exp 20, batch 64"): (8.0, False),  # the faster per-sample variant: 8x < 10x
        ("regulariser at 20 earlier tasks / at 1", "HN-2"): (2.5, True),
        ("batched data path / per-sample DataLoader", "device-batches, batch 64"): (9.0, False),
    }


def test_recorded_folder_renders_its_machine_goals_and_figure() -> None:
    from benchmarks.speed_report import figure_png, goals_markdown, load_recorded, machine_line

    table, meta = load_recorded(Path(__file__).parents[2] / "benchmarks" / "results" / "h200")
    assert {"train", "compile"} <= set(table.section)  # compile.csv appended
    line = machine_line(meta)
    assert "NVIDIA H200 (device cuda)" in line and meta["command"] in line and "repetitions" in line
    assert "img/s" not in line.split("Command")[0]  # no unit given: no speed beside the time
    text = goals_markdown(table, meta["device"])
    assert text.startswith("#### Goals (the goals were set for the 2-core CPU") and "MISSED" in text
    assert goals_markdown(table[table.section == "compile"], "cpu") == ""
    assert figure_png(table).startswith(b"\x89PNG")


def test_a_recorded_cpu_benchmark_quotes_its_time_beside_the_machines_plain_network_speed() -> None:
    from benchmarks.speed_report import load_recorded, machine_line, plain_img_s

    table, meta = load_recorded(Path(__file__).parents[2] / "benchmarks" / "results" / "cpu-2core")
    unit = plain_img_s(table)
    ceiling = table[(table.model == "HN-F") & (table.method == "ceiling") & (table.batch == 64)
                    & (table.experience == 2) & (table.section == "train")]
    assert len(ceiling) == 1 and unit == ceiling.img_s.item()
    assert f"in {meta['seconds'] / 60:.0f} min (plain slim ResNet-18: {unit:,.0f} img/s)" in machine_line(meta, unit)
    assert plain_img_s(table[table.model != "HN-F"]) is None


def test_gpu_comparison_puts_the_measurement_beside_the_prediction() -> None:
    from benchmarks.gpu_plan import comparison

    e2e = Path(__file__).parents[2] / "benchmarks" / "results" / "h200" / "e2e.csv"
    row = comparison([4], e2e).iloc[0]
    times = pd.read_csv(e2e).query("model == 'HN-4'")
    assert row.model == "HN-4" and row["operators / step"] > 0 and row["paper (its GPU)"] == "~114 min"
    assert row["measured ms / step (H200)"] == 1e3 * times.train_time_s.sum() / times.steps.sum()
    assert row["100 epochs (min, H200, scaled)"] == (times.train_time_s / times.epochs).sum() * 100 / 60
