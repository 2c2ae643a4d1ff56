"""benchmarks/record_ledger.py: one build's ledger kept under benchmarks/results/ for later sessions."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from benchmarks import record_ledger
from phn.ledger import Finding, ledger_table, record
from phn.provenance import REPO_DIR, source_fingerprint


def _build(directory: Path) -> None:
    """A built book's folder: two claims files, a failed run's leftovers, two executed notebooks."""
    record("cosine", [Finding("figure12-cosine", "mean cos -0.3 [-0.4, -0.2]", "holds qualitatively", "profile cpu")],
           path=directory / "cosine.claims.json")
    record("noise", [Finding("4.2-noise", "not judged", "inconclusive", "profile cpu")], path=directory / "noise.claims.json")
    (directory / "freeze.partial.claims.json").write_text("{}")
    for name, seconds in (("cosine", 120.0), ("noise", 600.0)):
        notebook = {"cells": [], "metadata": {"papermill": {"duration": seconds, "parameters": {"profile": "cpu"},
                                                             "end_time": "2026-12-02T15:00:00"}},
                    "nbformat": 4, "nbformat_minor": 5}
        (directory / f"{name}.ipynb").write_text(json.dumps(notebook))


def test_a_recorded_build_keeps_its_claims_code_machine_and_times(tmp_path: Path) -> None:
    built, out = tmp_path / "executed", tmp_path / "results" / "ledger-cpu-seeds-0-1-2"
    _build(built)
    record_ledger.main(["--claims", str(built), "--out", str(out), "--command", "make book PROFILE=cpu",
                        "--img-s", "300", "--wall-minutes", "30.5"])
    assert sorted(p.name for p in out.iterdir()) == ["build.json", "cosine.claims.json", "ledger.csv", "noise.claims.json"]
    build = json.loads((out / "build.json").read_text())
    assert build["command"] == "make book PROFILE=cpu" and build["profile"] == "cpu" and build["seeds"] == [0, 1, 2]
    assert build["code"]["phn_sha256"] == source_fingerprint() and build["plain_img_s"] == 300.0
    assert build["minutes"] == {"cosine": 2.0, "noise": 10.0} and build["total_minutes"] == 12.0
    assert build["minutes_at_600_img_s"] == {"cosine": 1.0, "noise": 5.0} and build["total_minutes_at_600_img_s"] == 6.0
    assert build["wall_minutes"] == 30.5
    rows = pd.read_csv(out / "ledger.csv")
    assert len(rows) == len(ledger_table(built)) and set(rows.verdict) >= {"holds qualitatively", "inconclusive"}
    with pytest.raises(SystemExit, match="exists; pass --overwrite"):
        record_ledger.main(["--claims", str(built), "--out", str(out), "--command", "x", "--img-s", "300"])
    record_ledger.main(["--claims", str(built), "--out", str(out), "--command", "y", "--img-s", "300", "--overwrite"])
    assert json.loads((out / "build.json").read_text())["command"] == "y"


def test_seeds_and_the_default_folder(tmp_path: Path) -> None:
    args = record_ledger.parse_args(["--claims", str(tmp_path), "--command", "make second-seeds", "--seeds", "[3, 4, 5]"])
    assert args.seeds == [3, 4, 5] and args.out == REPO_DIR / "benchmarks" / "results" / "ledger-cpu-seeds-3-4-5"
    assert record_ledger.parse_seeds("3,4 5") == [3, 4, 5]
    with pytest.raises(SystemExit):
        record_ledger.parse_args(["--claims", str(tmp_path), "--command", "x", "--seeds", "three"])
    with pytest.raises(SystemExit):
        record_ledger.parse_args(["--claims", str(tmp_path), "--command", "x", "--profile", "cpuu"])
    with pytest.raises(SystemExit, match="no \\*.claims.json in"):
        record_ledger.main(["--claims", str(tmp_path / "empty"), "--command", "x", "--img-s", "1",
                            "--out", str(tmp_path / "out")])


def _make_variable(name: str, *assignments: str) -> str:
    done = subprocess.run(["make", "-n", "-p", "-C", str(REPO_DIR), *assignments, "help"], capture_output=True,
                          text=True, check=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith(f"{name} := ") or line.startswith(f"{name} = ")]
    return lines[-1].split("=", 1)[1].strip()


def test_the_makefile_compares_with_a_recorded_second_set_named_by_its_seeds() -> None:
    assert _make_variable("RECORDED_SECOND") == "benchmarks/results/ledger-cpu-seeds-3-4-5"
    assert _make_variable("RECORDED_SECOND", "SEEDS=[7, 8]", "PROFILE=gpu") == "benchmarks/results/ledger-gpu-seeds-7-8"
    dry = subprocess.run(["make", "-n", "-C", str(REPO_DIR), "record-second-seeds"], capture_output=True, text=True,
                         check=True).stdout
    assert "--claims runs/second-seeds" in dry and "--out benchmarks/results/ledger-cpu-seeds-3-4-5" in dry


def test_the_ledger_page_compares_with_this_machines_second_set_else_the_recorded_one(tmp_path: Path) -> None:
    second, recorded = tmp_path / "second-seeds", tmp_path / "recorded"

    def ledger_command() -> str:
        dry = subprocess.run(["make", "-n", "-C", str(REPO_DIR), "book/executed/ledger.ipynb", f"SECOND={second}",
                              f"RECORDED_SECOND={recorded}"], capture_output=True, text=True, check=True).stdout
        joined = dry.replace("\\\n", " ")  # the recipe's continued lines as one command
        return next(line for line in joined.splitlines() if "notebooks/ledger.ipynb" in line)

    assert "compare_dir" not in ledger_command()
    recorded.mkdir()
    (recorded / "cosine.claims.json").write_text("{}")
    assert f"-p compare_dir {recorded}" in ledger_command()
    second.mkdir()
    (second / "cosine.claims.json").write_text("{}")
    assert f"-p compare_dir {second}" in ledger_command()


def test_the_ledger_page_times_a_recorded_build_by_its_own_machine(tmp_path: Path) -> None:
    from phn.ledger import build_times

    built, out = tmp_path / "executed", tmp_path / "recorded"
    _build(built)
    here, sentence = build_times(built, lambda: 1200.0)  # a build of this machine: measured now
    assert here.set_index("notebook")["minutes at 600 img/s"].to_dict() == {"cosine": 4.0, "noise": 20.0}
    assert "**12.0 minutes** (24.0 at 600 img/s)" in sentence and "1,200 img/s" in sentence

    record_ledger.main(["--claims", str(built), "--out", str(out), "--command", "make book PROFILE=cpu", "--img-s", "300"])

    def never() -> float:
        raise AssertionError("a recorded build's speed is the one recorded with it")

    recorded, sentence = build_times(out, never)
    assert recorded.set_index("notebook")["minutes at 600 img/s"].to_dict() == {"cosine": 1.0, "noise": 5.0}
    assert "(6.0 at 600 img/s)" in sentence and "recorded with `make book PROFILE=cpu`" in sentence
    assert "300 img/s" in sentence
    empty, sentence = build_times(tmp_path / "nothing", never)
    assert empty.empty and sentence == ""


def test_two_recorded_ledgers_side_by_side_on_the_ledger_page(tmp_path: Path) -> None:
    """The README's command: the ledger page renders a recorded set against another, says whether
    both ran the same code, and times the recorded build by its own machine."""
    import html

    import nbformat

    from phn.notebooks import execute

    first, second = tmp_path / "seeds-0-1-2", tmp_path / "seeds-3-4-5"
    _build(tmp_path / "a")
    record_ledger.main(["--claims", str(tmp_path / "a"), "--out", str(first), "--command", "make book PROFILE=cpu",
                        "--img-s", "300"])
    (tmp_path / "b").mkdir()
    record("cosine", [Finding("figure12-cosine", "mean cos -0.2 [-0.5, 0.1]", "inconclusive", "profile cpu, seeds 3, 4, 5")],
           path=tmp_path / "b" / "cosine.claims.json")
    record_ledger.main(["--claims", str(tmp_path / "b"), "--out", str(second), "--command", "make second-seeds",
                        "--seeds", "3 4 5", "--img-s", "300"])
    execute(REPO_DIR / "notebooks" / "ledger.ipynb", tmp_path / "ledger.ipynb",
            {"claims_dir": str(first), "compare_dir": str(second)})
    page = nbformat.read(tmp_path / "ledger.ipynb", as_version=4)
    text = html.unescape("".join(out.get("data", {}).get(kind, "") for cell in page.cells
                                 for out in cell.get("outputs", []) for kind in ("text/markdown", "text/html")))
    # Figure 12 changed verdict; Section 4.2's chapter ran in the first set only.
    assert "Both seed sets ran on the same training code" in text and "changed: **1**" in text
    assert "one set only: **1**" in text and "the second set lacks noise" in text
    assert "<th>First set: ours</th>" in text and "First_ours" not in text
    assert "mean cos -0.2 [-0.5, 0.1]" in text and "mean cos -0.3 [-0.4, -0.2]" in text
    assert "recorded with `make book PROFILE=cpu`" in text and "300 img/s" in text


def test_a_seed_set_recorded_chapter_by_chapter(tmp_path: Path) -> None:
    """--add: a slow machine's second set in parts, each with its own command, machine and times; a
    chapter recorded again replaces its earlier part; parts must agree on profile and seeds."""
    from phn.ledger import build_times, code_versions, ledger_table, notebooks_recorded

    built, out = tmp_path / "executed", tmp_path / "ledger-cpu-seeds-3-4-5"
    _build(built)
    (built / "noise.claims.json").unlink()
    (built / "noise.ipynb").unlink()
    args = ["--out", str(out), "--seeds", "3 4 5"]
    record_ledger.main(["--claims", str(built), "--command", "part one", "--img-s", "300", *args])
    with pytest.raises(SystemExit, match="--overwrite to replace it or --add"):
        record_ledger.main(["--claims", str(built), "--command", "x", "--img-s", "300", *args])

    later = tmp_path / "later"
    _build(later)  # cosine again (replaced) and noise (added)
    (later / "cosine.claims.json").unlink()
    (later / "cosine.ipynb").unlink()
    record_ledger.main(["--claims", str(later), "--command", "part two", "--img-s", "150", "--add", *args])
    build = json.loads((out / "build.json").read_text())
    assert build["profile"] == "cpu" and build["seeds"] == [3, 4, 5]
    assert not any({"profile", "seeds"} & set(part) for part in build["parts"])  # the set's, not a part's
    assert [(p["command"], p["notebooks"], p["minutes"]) for p in build["parts"]] == [
        ("part one", ["cosine"], {"cosine": 2.0}), ("part two", ["noise"], {"noise": 10.0})]
    assert notebooks_recorded(out) == ["cosine", "noise"] and len(pd.read_csv(out / "ledger.csv")) == len(ledger_table(out))
    assert code_versions(out)["phn_sha256"] == {source_fingerprint()}

    times, sentence = build_times(out, lambda: (_ for _ in ()).throw(AssertionError("recorded: not measured")))
    # each part scaled by its own machine: 2 min at 300 img/s, 10 min at 150 img/s
    assert times.set_index("notebook")["minutes at 600 img/s"].to_dict() == {"cosine": 1.0, "noise": 2.5}
    assert "in 2 parts" in sentence and "`part one`" in sentence and "150 img/s" in sentence and "(3.5 at 600 img/s)" in sentence

    _build(later)  # both chapters in one folder: --notebooks records the named one only
    record_ledger.main(["--claims", str(later), "--command", "noise only", "--img-s", "600", "--add",
                        "--notebooks", "noise", *args])
    parts = json.loads((out / "build.json").read_text())["parts"]
    assert [(p["command"], p["notebooks"], p["minutes"]) for p in parts] == [
        ("part one", ["cosine"], {"cosine": 2.0}), ("noise only", ["noise"], {"noise": 10.0})]
    with pytest.raises(SystemExit, match="no \\*.claims.json of ablations in"):
        record_ledger.main(["--claims", str(later), "--command", "x", "--img-s", "1", "--add", "--notebooks",
                            "ablations", *args])

    # cosine recorded again: part one has nothing left
    record_ledger.main(["--claims", str(later), "--command", "part three", "--img-s", "300", "--add", *args])
    parts = json.loads((out / "build.json").read_text())["parts"]
    assert [p["command"] for p in parts] == ["part three"] and parts[0]["notebooks"] == ["cosine", "noise"]

    with pytest.raises(SystemExit, match="parts must agree"):
        record_ledger.main(["--claims", str(later), "--command", "x", "--img-s", "300", "--add", "--out", str(out),
                            "--seeds", "6 7 8"])
    with pytest.raises(SystemExit):
        record_ledger.main(["--claims", str(later), "--command", "x", "--add", "--overwrite", *args])
    dry = subprocess.run(["make", "-n", "-C", str(REPO_DIR), "record-second-seeds", "ADD=1", "SECTIONS=benchmarks"],
                         capture_output=True, text=True, check=True).stdout
    assert "--add" in dry and "SECTIONS='benchmarks'" in dry and "--notebooks benchmarks" in dry
    assert "SECOND=" not in dry and "--overwrite" not in dry


def test_the_books_own_seeds_are_recorded_from_a_folder_of_their_own() -> None:
    """SEEDS='[0, 1, 2]' SECOND=runs/first-seeds: the recorded command names the folder (a reader reruns
    it as written) and OVERWRITE=1 replaces an earlier recording of the same set."""
    args = ["SEEDS=[0, 1, 2]", "SECOND=runs/first-seeds", "SECTIONS=benchmarks cosine", "OVERWRITE=1"]
    dry = subprocess.run(["make", "-n", "-C", str(REPO_DIR), "record-second-seeds", *args],
                         capture_output=True, text=True, check=True).stdout
    assert "--claims runs/first-seeds" in dry and "--out benchmarks/results/ledger-cpu-seeds-0-1-2" in dry
    assert "SECTIONS='benchmarks cosine' SECOND=runs/first-seeds\"" in dry and "--overwrite" in dry
    run = subprocess.run(["make", "-n", "-C", str(REPO_DIR), "second-seeds", *args[:3]],
                         capture_output=True, text=True, check=True).stdout
    assert "for nb in benchmarks cosine" in run and "runs/first-seeds/$nb.ipynb -p profile cpu -p seeds '[0, 1, 2]'" in run


def test_a_recorded_ledgers_claims_files_are_committed_with_it() -> None:
    """The claims files are the record (the ledger page reads them, not ledger.csv): git must not
    ignore them under benchmarks/results/, where it ignores them everywhere else."""
    def ignored(path: str) -> bool:
        return subprocess.run(["git", "-C", str(REPO_DIR), "check-ignore", "-q", path]).returncode == 0

    assert not ignored("benchmarks/results/ledger-cpu-seeds-3-4-5/benchmarks.claims.json")
    assert ignored("runs/second-seeds/benchmarks.claims.json") and ignored("book/executed/ledger.claims.json")
