"""The reproduction ledger: findings written by notebooks, joined with the paper's claims."""

from __future__ import annotations

import json
import math
import statistics

import pytest
from scipy.stats import t as student_t

from phn import ledger
from phn.ledger import (
    CLAIMS, RULE_MARKDOWN, Finding, Interval, compare, equivalent, interval_text, judged, ledger_table, load_findings,
    not_judged_reason, paired_interval, record, verdict_counts, verdict_of,
)


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


def test_a_claim_a_notebook_ran_without_is_not_measured_with_its_reason(tmp_path):
    """A notebook whose grid leaves a claim out (opt-in at the profile) says why; the ledger shows that
    reason, not "did not run"; an unknown claim id is refused."""
    record("benchmarks", [Finding("table6-memory", "30 of 30", "holds", "cfg")], path=tmp_path / "b.claims.json",
           not_measured={"figure8-stability": "Figure 8's runs are opt-in at profile cpu"})
    table = ledger_table(tmp_path).set_index("where")
    row = table.loc["Section 4.3, Figure 8"]
    assert row.verdict == "not measured" and row.configuration.startswith(
        "the benchmarks notebook ran without it: Figure 8's runs are opt-in at profile cpu")
    assert "did not run in this build" in table.loc["Section 4.1, Figure 4"].configuration
    with pytest.raises(ValueError, match="unknown claim"):
        record("benchmarks", [], path=tmp_path / "c.claims.json", not_measured={"figure-99": "x"})


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


# --- The statistical verdict rule -----------------------------------------------------------------

def bounds(diffs):
    """The interval written out from the formula, independently of phn.ledger."""
    n = len(diffs)
    mean = sum(diffs) / n
    half = student_t.ppf(0.975, n - 1) * statistics.stdev(diffs) / math.sqrt(n)
    return mean - half, mean + half


# differences a - b of [1.0, 1.2, 0.8]: mean 1, sd 0.2, t(0.975, 2) = 4.303, half-width 0.497
A = [11.0, 21.2, 30.8]
B = [10.0, 20.0, 30.0]
LOW, HIGH = bounds([1.0, 1.2, 0.8])


def test_paired_interval_is_the_student_t_interval_of_the_paired_difference():
    assert (LOW, HIGH) == pytest.approx((0.503, 1.497), abs=1e-3)
    interval = paired_interval(A, B)
    assert isinstance(interval, Interval) and interval.n == 3
    assert (interval.mean, interval.low, interval.high) == pytest.approx((1.0, LOW, HIGH))
    assert str(interval) == "+1.0 [0.5, 1.5]"
    assert str(paired_interval(B, A)) == "-1.0 [-1.5, -0.5]"
    assert str(Interval(3.2, 1.1, 5.3, 4)) == "+3.2 [1.1, 5.3]"
    assert interval_text(interval) == "+1.0 points (95 % interval 0.5 to 1.5, 3 seeds)"
    assert interval_text(interval, unit="", digits=2) == "+1.00 (95 % interval 0.50 to 1.50, 3 seeds)"
    wider = paired_interval(A, B, confidence=0.99)
    assert wider.low < LOW and wider.high > HIGH and wider.confidence == 0.99
    with pytest.raises(AttributeError):
        interval.low = 0.0  # frozen


def test_compare_on_each_side_of_the_margin():
    assert compare(A, B) == "greater"
    assert compare(A, B, margin=0.5) == "greater"
    assert compare(A, B, margin=0.51) == "inconclusive"
    assert compare(A, B, margin=LOW - 1e-9) == "greater"
    # the low end must lie strictly above the margin: identical differences give an exact zero-width interval
    assert paired_interval([2.0, 3.0, 4.0], [1.0, 2.0, 3.0]) == Interval(1.0, 1.0, 1.0, 3)
    assert compare([2.0, 3.0, 4.0], [1.0, 2.0, 3.0], margin=1.0) == "inconclusive"
    assert compare([2.0, 3.0, 4.0], [1.0, 2.0, 3.0], margin=0.999) == "greater"
    assert compare(A, B, margin=LOW + 1e-9) == "inconclusive"
    # the other direction
    assert compare(B, A) == "less" and compare(B, A, margin=0.5) == "less"
    assert compare(B, A, margin=LOW - 1e-9) == "less" and compare(B, A, margin=LOW + 1e-9) == "inconclusive"
    # an interval that straddles zero decides nothing
    assert compare([1.0, 2.0, 3.0], [1.5, 1.5, 2.5]) == "inconclusive"


def test_one_seed_is_never_decisive_and_two_work():
    one = paired_interval([5.0], [1.0])
    assert one.n == 1 and one.mean == 4.0 and one.low == -math.inf and one.high == math.inf
    assert str(one) == "+4.0 [-inf, inf]"
    assert compare([5.0], [1.0]) == "inconclusive" and equivalent([1.0], [1.0], margin=100.0) == "inconclusive"
    low, high = bounds([1.0, 1.02])  # t(0.975, 1) = 12.706: half-width 0.127
    assert (low, high) == pytest.approx((0.883, 1.137), abs=1e-3)
    two = paired_interval([2.0, 3.02], [1.0, 2.0])
    assert two.n == 2 and (two.low, two.high) == pytest.approx((low, high))
    assert compare([2.0, 3.02], [1.0, 2.0], margin=low - 1e-9) == "greater"
    assert compare([2.0, 3.02], [1.0, 2.0], margin=low + 1e-9) == "inconclusive"
    assert compare([2.0, 2.2], [1.0, 1.0]) == "inconclusive"  # [1.0, 1.2]: 1.1 ± 1.27 straddles zero


def test_equivalence_inside_outside_and_straddling_the_band():
    assert equivalent(A, B, margin=HIGH + 1e-9) == "equivalent"  # [0.503, 1.497] within ±1.497
    assert equivalent([2.0, 3.0, 4.0], [1.0, 2.0, 3.0], margin=1.0) == "equivalent"  # the band's ends are included
    assert equivalent(A, B, margin=1.5) == "equivalent" and equivalent(B, A, margin=1.5) == "equivalent"
    assert equivalent(A, B, margin=HIGH - 1e-9) == "inconclusive"  # straddles the band's upper end
    assert equivalent(A, B, margin=1.0) == "inconclusive"
    assert equivalent(A, B, margin=LOW + 1e-9) == "inconclusive"
    assert equivalent(A, B, margin=LOW - 1e-9) == "different"  # wholly above the band
    assert equivalent(A, B, margin=0.5) == "different" and equivalent(B, A, margin=0.5) == "different"
    # a zero mean with a wide interval straddles both ends of a narrow band
    assert equivalent([1.0, 2.0, 3.0], [2.0, 1.0, 3.0], margin=0.5) == "inconclusive"


def test_paired_interval_errors():
    with pytest.raises(ValueError, match="a has 3 values, b has 2"):
        paired_interval([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="empty"):
        paired_interval([], [])
    with pytest.raises(ValueError, match="a contains NaN at seed index \\[1\\]"):
        paired_interval([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError, match="b contains NaN"):
        compare([1.0, 2.0], [float("nan"), 2.0])
    with pytest.raises(ValueError, match="confidence"):
        paired_interval(A, B, confidence=95)
    with pytest.raises(ValueError, match="margin must be a finite number >= 0"):
        compare(A, B, margin=-1.0)
    with pytest.raises(ValueError, match="equivalence margin must be > 0"):
        equivalent(A, B, margin=0.0)


def test_verdict_of_combines_the_parts():
    assert verdict_of(["greater", "greater"], "greater", paper_setting=True) == "holds"
    assert verdict_of(["greater", "greater"], "greater", paper_setting=False) == "holds qualitatively"
    assert verdict_of(["less", "less"], "greater", paper_setting=True) == "does not hold at this scale"
    # against, the rest undecided, none as expected: does not hold
    assert verdict_of(["less", "inconclusive"], "greater", paper_setting=True) == "does not hold at this scale"
    # mixed, or undecided parts beside parts as expected: inconclusive
    assert verdict_of(["greater", "less"], "greater", paper_setting=True) == "inconclusive"
    assert verdict_of(["greater", "inconclusive"], "greater", paper_setting=True) == "inconclusive"
    assert verdict_of(["inconclusive", "inconclusive"], "greater", paper_setting=True) == "inconclusive"
    assert verdict_of([], "greater", paper_setting=True) == "inconclusive"
    # equivalence claims
    assert verdict_of(["equivalent"] * 3, "equivalent", paper_setting=False) == "holds qualitatively"
    assert verdict_of(["different", "inconclusive"], "equivalent", paper_setting=False) == "does not hold at this scale"
    assert verdict_of(["equivalent", "different"], "equivalent", paper_setting=False) == "inconclusive"
    # one expected outcome per part (e.g. "the drop is minimal" for similar tasks, not for different ones)
    assert verdict_of(["equivalent", "different"], ["equivalent", "different"], paper_setting=True) == "holds"
    assert verdict_of(["greater", "less"], ["greater", "less"], paper_setting=False) == "holds qualitatively"
    assert verdict_of(["less", "greater"], ["greater", "less"], paper_setting=False) == "does not hold at this scale"
    assert verdict_of(["greater", "inconclusive"], ["greater", "equivalent"], paper_setting=True) == "inconclusive"
    # from the numbers, end to end: HN forgets less than LR at every depth = LR's forgetting greater
    lr, hn = [[30.0, 31.0, 29.0], [40.0, 42.0, 41.0]], [[5.0, 6.0, 4.5], [8.0, 7.0, 9.0]]
    assert verdict_of([compare(l, h, margin=5.0) for l, h in zip(lr, hn)], "greater", False) == "holds qualitatively"


def test_verdict_of_errors():
    with pytest.raises(ValueError, match="expected has 1 outcomes for 2 parts"):
        verdict_of(["greater", "greater"], ["greater"], paper_setting=True)
    with pytest.raises(ValueError, match="expected outcome must be one of"):
        verdict_of(["inconclusive"], "inconclusive", paper_setting=True)
    with pytest.raises(ValueError, match="part 1: outcome 'equivalent' does not answer the expected 'greater'"):
        verdict_of(["greater", "equivalent"], "greater", paper_setting=True)


def test_judged_and_the_reason():
    assert judged(True, True) and not judged(False, True) and not judged(True, False)
    assert not_judged_reason(["HN-3"]) == "not judged: HN-3 not shown to converge at this profile"
    assert not_judged_reason(["HN-3", "LR-2"]) == "not judged: HN-3, LR-2 not shown to converge at this profile"
    assert (not_judged_reason(["HN-3"], ["Naive"])
            == "not judged: HN-3 not shown to converge; Naive not clearly above chance at this profile")
    with pytest.raises(ValueError, match="judged"):
        not_judged_reason([])


def test_rule_markdown_states_the_rule():
    for words in ("95 %", "Student t", "n - 1", "margin", "equivalent", "holds qualitatively",
                  "does not hold at this scale", "inconclusive", "paper's setting", "converged", "forgetting"):
        assert words in RULE_MARKDOWN, words
    assert all(line.startswith(("- ", "  ")) for line in RULE_MARKDOWN.splitlines()[2:] if line)
    assert set(ledger.__all__) >= {"RULE_MARKDOWN", "Interval", "paired_interval", "compare", "equivalent",
                                   "verdict_of", "judged", "not_judged_reason", "interval_text"}


def test_a_claim_made_for_most_cases_holds_on_more_than_half_of_its_parts():
    from phn.ledger import verdict_of
    assert verdict_of(["greater", "greater", "less"], "greater", False, most=True) == "holds qualitatively"
    assert verdict_of(["greater", "greater", "less"], "greater", False) == "inconclusive"
    assert verdict_of(["greater", "inconclusive", "less", "less"], "greater", True, most=True) == "inconclusive"
    assert verdict_of(["inconclusive", "less"], "greater", True, most=True) == "does not hold at this scale"


def test_judge_pairs_by_seed_and_refuses_unconverged_strategies():
    from phn.ledger import judge
    import pandas as pd
    rows = [{"strategy": s, "seed": seed, "forgetting": f} for s, seed, f in [
        ("LR-2", 0, 20.0), ("LR-2", 1, 25.0), ("LR-2", 2, 30.0),  # listed out of seed order on purpose:
        ("HN-2", 2, 2.0), ("HN-2", 0, 1.0), ("HN-2", 1, 1.5)]]
    table = pd.DataFrame(rows)
    found = judge("method-forgetting", [("LR-2", "HN-2", "forgetting", "greater")], table, "forgetting", "cfg", False)
    # differences 19, 23.5, 28: mean 23.5, t(0.975, 2) = 4.303, sd = 4.5 -> half-width 11.18
    assert found.verdict == "holds qualitatively" and "+23.5 [12.3, 34.7]" in found.ours
    assert judge("method-forgetting", [("HN-2", "LR-2", "forgetting", "greater")], table, "f", "cfg", False).verdict == \
        "does not hold at this scale"
    refused = judge("method-forgetting", [("LR-2", "HN-2", "forgetting", "greater")], table, "f", "cfg", True, not_converged=["HN-2"])
    assert refused.verdict == "inconclusive" and "HN-2 not shown to converge" in refused.ours
    missing = judge("method-forgetting", [("LR-2", "HN-4", "forgetting", "greater")], table, "f", "cfg", True)
    assert missing.verdict == "inconclusive" and "no common seed" in missing.ours


def test_two_ledgers_side_by_side_name_flips_and_changes():
    import pandas as pd
    from phn.ledger import verdict_changes

    def table(verdicts):
        return pd.DataFrame([{"where": w, "claim": c, "paper": "", "ours": f"{c} {v}", "verdict": v,
                              "configuration": "", "notebook": "n"} for (w, c), v in verdicts.items()])

    first = table({("T2", "a"): "holds qualitatively", ("T4", "b"): "inconclusive", ("F8", "c"): "holds",
                   ("T5", "d"): "does not hold at this scale"})
    second = table({("T2", "a"): "holds qualitatively", ("T4", "b"): "holds qualitatively",
                    ("F8", "c"): "does not hold at this scale", ("T5", "d"): "inconclusive"})
    changes = verdict_changes(first, second).set_index("claim")
    assert changes.change.to_dict() == {"a": "same", "b": "changed", "c": "flip", "d": "changed"}
    assert changes.loc["b", "second_ours"] == "b holds qualitatively"
    # a chapter that ran in one set only is not a changed verdict
    partial = second.assign(ran=[True, True, False, True], verdict=["holds qualitatively", "holds qualitatively",
                                                                    "not measured", "inconclusive"])
    changes = verdict_changes(first.assign(ran=True), partial).set_index("claim")
    assert changes.change.to_dict() == {"a": "same", "b": "changed", "c": "one set only", "d": "changed"}
    ran_without = partial.assign(ran=True)  # measured in one set only because the other ran without it
    assert verdict_changes(first, ran_without).set_index("claim").change["c"] == "changed"


def test_claims_name_the_code_that_measured_them(tmp_path):
    from phn.provenance import source_fingerprint

    record("noise", [Finding("4.2-noise", "x", "inconclusive", "profile cpu")], path=tmp_path / "noise.claims.json")
    findings = load_findings(tmp_path)
    assert findings.phn_sha256.tolist() == [source_fingerprint()]
    assert ledger.code_versions(tmp_path)["phn_sha256"] == {source_fingerprint()}


def _claims_file(directory, notebook, sha, commit):
    directory.mkdir(parents=True, exist_ok=True)
    payload = {"notebook": notebook, "written": "2026-12-02T00:00:00+00:00",
               "findings": [{"claim": "figure12-cosine", "ours": "negative", "verdict": "holds qualitatively",
                             "configuration": "profile cpu"}]}
    if sha is not None:
        payload["code"] = {"phn_sha256": sha, "git_commit": commit, "git_dirty": False}
    (directory / f"{notebook}.claims.json").write_text(json.dumps(payload))


def test_two_seed_sets_say_whether_they_ran_the_same_training_code(tmp_path):
    a, b, c, old = tmp_path / "a", tmp_path / "b", tmp_path / "c", tmp_path / "old"
    _claims_file(a, "cosine", "1" * 64, "aaaaaaa" + "0" * 33)
    _claims_file(b, "cosine", "1" * 64, "bbbbbbb" + "0" * 33)
    _claims_file(c, "cosine", "2" * 64, "ccccccc" + "0" * 33)
    _claims_file(old, "cosine", None, None)  # written before claims named their code
    same = ledger.same_code_sentence(a, b)
    assert same.startswith("Both seed sets ran on the same training code") and "111111111111" in same
    assert "aaaaaaa" in same and "bbbbbbb" in same
    different = ledger.same_code_sentence(a, c)
    assert "different training code" in different and "222222222222" in different
    assert "not recorded" in ledger.same_code_sentence(a, old)
    assert load_findings(old).phn_sha256.isna().all()
    # A recorded folder's build.json names the code of files that do not (benchmarks/record_ledger.py).
    (old / ledger.BUILD_FILE).write_text(json.dumps({"code": {"phn_sha256": "1" * 64, "git_commit": "d" * 40}}))
    assert ledger.code_versions(old) == {"phn_sha256": {"1" * 64}, "git_commit": {"d" * 40}}
    assert ledger.same_code_sentence(a, old).startswith("Both seed sets ran on the same training code")
    _claims_file(old, "noise", "2" * 64, "e" * 40)  # a folder of mixed code is not one version
    assert "different training code" in ledger.same_code_sentence(a, old)


def test_the_ledger_table_fits_the_text_column():
    """The book's text column is narrower than the ledger's natural width: without fixed column widths
    the Configuration column ran off the page (seen in a screenshot). The widths add up to the table."""
    import re

    widths = [int(w) for w in re.findall(r"th:nth-child\(\d\) \{ width: (\d+)%; \}", ledger.LEDGER_CSS)]
    assert "table-layout: fixed" in ledger.LEDGER_CSS and len(widths) == 6 and sum(widths) == 100
    assert "nowrap" not in ledger.LEDGER_CSS


def test_the_ledger_says_which_chapters_ran(tmp_path):
    from phn.ledger import coverage_sentence, notebooks_recorded

    first, second = tmp_path / "first", tmp_path / "second"
    _claims_file(first, "cosine", None, None)
    record("noise", [Finding("4.2-noise", "x", "inconclusive", "profile cpu")], path=first / "noise.claims.json")
    _claims_file(second, "cosine", None, None)
    assert notebooks_recorded(first) == ["cosine", "noise"] and notebooks_recorded(second) == ["cosine"]
    table = ledger_table(second)
    assert table[table.notebook == "cosine"].ran.all() and not table[table.notebook == "noise"].ran.any()
    assert coverage_sentence(first, first) == ""
    assert "the second set lacks noise" in coverage_sentence(first, second)
    assert "the first set lacks noise" in coverage_sentence(second, first)
