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
