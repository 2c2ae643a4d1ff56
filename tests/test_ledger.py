"""The reproduction ledger: findings written by notebooks, joined with the paper's claims."""

from __future__ import annotations

import json

import pytest

from phn import ledger
from phn.ledger import CLAIMS, Finding, ledger_table, load_findings, record, verdict_counts


def test_claim_ids_are_unique_and_findings_are_checked():
    assert len({c.id for c in CLAIMS}) == len(CLAIMS)
    with pytest.raises(ValueError, match="unknown claim"):
        Finding("no-such-claim", "x", "holds", "cfg")
    with pytest.raises(ValueError, match="verdict must be one of"):
        Finding("4.2-noise", "x", "not measured", "cfg")  # a notebook that ran measured something
    with pytest.raises(ValueError, match="verdict must be one of"):
        Finding("4.2-noise", "x", "probably", "cfg")


def test_record_and_ledger_table(tmp_path):
    record("noise", [Finding("4.2-noise", "LR drops 30, HN 1", "holds qualitatively", "noisy fashionmnist")],
           path=tmp_path / "noise.claims.json")
    record("cosine", [Finding("figure12-cosine", "negative on 3 of 3 seeds", "holds", "HN-4")],
           path=tmp_path / "cosine.claims.json")
    (tmp_path / "freeze.partial.claims.json").write_text("{}")  # a failed run's leftovers are ignored
    findings = load_findings(tmp_path)
    assert sorted(findings.notebook) == ["cosine", "noise"]
    table = ledger_table(tmp_path)
    assert len(table) == len(CLAIMS)
    row = table.set_index("where").loc["Section 4.2, Table 1, Figure 7"]
    assert row.verdict == "holds qualitatively" and row.ours == "LR drops 30, HN 1"
    unmeasured = table[table.verdict == "not measured"]
    assert len(unmeasured) == len(CLAIMS) - 2
    freeze = unmeasured[unmeasured.notebook == "freeze"].iloc[0]
    assert "the freeze notebook did not run in this build" in freeze.configuration and "SVHN" in "".join(
        unmeasured.configuration)
    counts = verdict_counts(table)
    assert counts["holds"] == 1 and counts["not measured"] == len(CLAIMS) - 2 and counts["inconclusive"] == 0


def test_a_foreign_json_file_is_named(tmp_path):
    (tmp_path / "x.claims.json").write_text(json.dumps({"findings": [{"claim": "4.2-noise"}]}))
    with pytest.raises(ValueError, match="x.claims.json: not a claims file"):
        load_findings(tmp_path)


def test_default_path_follows_the_notebook_runner(tmp_path, monkeypatch):
    monkeypatch.setenv("PHN_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv(ledger.ENV_FILE, raising=False)
    assert ledger.claims_path("noise") == tmp_path / "runs" / "ledger" / "noise.claims.json"
    monkeypatch.setenv(ledger.ENV_FILE, str(tmp_path / "book" / "noise.partial.claims.json"))
    assert ledger.claims_directory() == tmp_path / "book"
    written = record("noise", [])
    assert written == tmp_path / "book" / "noise.partial.claims.json" and json.loads(written.read_text())["findings"] == []


def test_verdict_from_parts():
    from phn.ledger import verdict_from

    assert verdict_from([True, True], paper_setting=False) == "holds qualitatively"
    assert verdict_from([True, True], paper_setting=True) == "holds"
    assert verdict_from([False, False], paper_setting=True) == "does not hold at this scale"
    assert verdict_from([True, False], paper_setting=False) == "inconclusive" and verdict_from([], True) == "inconclusive"
    assert verdict_from([True, True, False], paper_setting=False, most=True) == "holds qualitatively"
