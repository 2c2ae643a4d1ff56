"""The reproduction ledger: the paper's claims, what each notebook measured, and a verdict.

Every section notebook ends by calling :func:`record` with its findings (:class:`Finding`: which claim,
what we measured, the verdict, the configuration). :func:`record` writes them as JSON next to the
executed notebook (``<output>.claims.json`` when the notebook runs through ``python -m phn notebook``,
which names that file in ``PHN_CLAIMS_FILE``), otherwise into ``runs/ledger/<notebook>.claims.json``.
:func:`ledger_table` joins the catalogue of claims (:data:`CLAIMS`, the paper's values quoted, never
computed) with the findings of one directory: the book's ledger page is rendered from it, never typed.

Verdicts (:data:`VERDICTS`), the rule stated on the ledger page:

- ``holds``: measured here, and the paper's claim holds at the margin the notebook states.
- ``holds qualitatively``: the direction the paper reports holds, its size does not (or the
  setting differs from the paper's, e.g. FashionMNIST for CIFAR-100).
- ``does not hold at this scale``: measured, and the direction is not the paper's.
- ``inconclusive``: measured, but the numbers cannot decide it (a model did not learn, or
  differences are within the stated tolerance).
- ``not measured``: no notebook of this build measured it; the row says what it needs.

How the numbers decide a verdict is one statistical rule, :data:`RULE_MARKDOWN` (rendered on the ledger
page): seed-paired 95 % t intervals (:func:`paired_interval`), directional comparisons with a margin
(:func:`compare`), equivalence within a stated margin (:func:`equivalent`), parts combined by
:func:`verdict_of`, and only converged strategies judged (:func:`judged`, :func:`not_judged_reason`).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd

from phn.machine import REFERENCE_IMG_S, scaled_minutes, speed_line
from phn.notebooks import durations
from phn.provenance import code_provenance

Verdict = Literal["holds", "holds qualitatively", "does not hold at this scale", "inconclusive", "not measured"]
VERDICTS: tuple[str, ...] = get_args(Verdict)
SUFFIX = ".claims.json"
ENV_FILE = "PHN_CLAIMS_FILE"


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, quoted.

    Attributes:
        id: stable key, e.g. ``"4.1-similar"``.
        where: section, table or figure of the paper.
        claim: the claim in one sentence.
        paper: the paper's numbers, quoted as the paper's.
        notebook: the notebook that tests it.
        needs: what the paper's own setting needs that this machine lacks (shown while not measured).
    """

    id: str
    where: str
    claim: str
    paper: str
    notebook: str
    needs: str = ""


@dataclass(frozen=True)
class Finding:
    """What one notebook measured for one claim.

    Attributes:
        claim: a :attr:`Claim.id` of :data:`CLAIMS`.
        ours: our numbers in one or two sentences.
        verdict: one of :data:`VERDICTS` (not ``"not measured"``).
        configuration: the setting the numbers come from (dataset, sizes, seeds).
    """

    claim: str
    ours: str
    verdict: Verdict
    configuration: str

    def __post_init__(self) -> None:
        if self.claim not in CLAIM_IDS:
            raise ValueError(f"unknown claim {self.claim!r}; known: {sorted(CLAIM_IDS)}")
        if self.verdict not in VERDICTS or self.verdict == "not measured":
            raise ValueError(f"verdict must be one of {list(VERDICTS[:-1])}, got {self.verdict!r}")


CLAIMS: tuple[Claim, ...] = (
    Claim("method-forgetting", "Table 2 (and the method)",
          "A partial hypernetwork hardly forgets, where latent replay forgets much.",
          "Split-CIFAR100: HN-k forgetting 3.1-8.1 points, LR-k 27.3-43.0, Naive 58.9",
          "benchmarks", "CIFAR-100 (or TinyImageNet) and 100 epochs per experience on a GPU"),
    Claim("table2-hn-beats-lr", "Table 2",
          "Each HN-k reaches a higher ACA than LR-k at the same freeze depth.",
          "Split-CIFAR100 ACA: HN-1..4 61.9 / 62.8 / 58.8 / 73.6, LR-1..4 48.1 / 51.1 / 50.1 / 51.4",
          "benchmarks", "CIFAR-100 (or TinyImageNet) and 100 epochs per experience on a GPU"),
    Claim("table2-hn2-near-hnf", "Table 2",
          "HN-2 reaches about the ACA of the full hypernetwork HN-F in about half its training time.",
          "Split-CIFAR100: HN-2 62.8 ACA in ~388 min, HN-F 64.2 in ~636 min",
          "benchmarks", "CIFAR-100 (or TinyImageNet) and 100 epochs per experience on a GPU"),
    Claim("figure8-stability", "Section 4.3, Figure 8",
          "At freeze depth 3 the partial hypernetwork keeps earlier experiences better than LR, but learns each "
          "new one less well.", "a figure: HN-3's curves stay flat where LR-3's fall; HN-3 starts lower",
          "benchmarks", "CIFAR-100 and 100 epochs per experience"),
    Claim("table6-memory", "Table 6",
          "Hypernetwork sizes and latent-replay buffer memory per freeze depth.",
          "HN-F 1,272,877 (4.86 MB) … HN-4 533,922 (2.04 MB) parameters; LR-0 … LR-4 buffers 2.34 / 15.62 / 7.81 "
          "/ 3.91 / 1.95 MB on CIFAR-100 (200 exemplars)", "benchmarks"),
    Claim("4.1-similar", "Section 4.1, Figure 4",
          "Freezing more stages costs little accuracy on experience 2 when both experiences are similar, much "
          "when they differ.", "CIFAR-10 → CIFAR-100: \"the accuracy drop is minimal\" for most k; GTSRB → CIFAR-100: "
          "\"significantly affected depending on\" k (a figure, no table)",
          "freeze", "CIFAR-10/100 and GTSRB"),
    Claim("4.1-simpler-second", "Section 4.1, Figure 4c",
          "Between different datasets, freezing hurts less when the second task is the simpler one.",
          "SVHN → FashionMNIST with three stages frozen: \"doesn't cause a noticeable reduction\"", "freeze",
          "SVHN"),
    Claim("4.2-noise", "Section 4.2, Table 1, Figure 7",
          "On a noisy stream latent replay (c = 1) loses its first experience, the partial hypernetwork keeps it.",
          "LR-k's first experience drops after the blurred third experience; HN-k's stays", "noise",
          "CIFAR-100 and 100 epochs per experience"),
    Claim("4.2-filters", "Section 4.2, Figure 6",
          "The partial hypernetwork generates mostly different filters for each experience.",
          "filters of a stage-3 conv after experience 3 look mostly different (a picture, no number)", "noise",
          "CIFAR-100 and 100 epochs per experience"),
    Claim("table3-lookup", "Table 3",
          "A lookup dimension d compresses the conv heads.",
          "HN-F, 10 outputs, 10 tasks: 451,661 (d = 4) … 1,124,081 (d = 64) parameters", "ablations"),
    Claim("table4-lookahead", "Table 4",
          "The look-ahead update raises ACA and learning accuracy at a time cost.",
          "HN-4: 66.9 → 74.3 ACA, 87 → 115 min", "ablations", "CIFAR-100 and 100 epochs per experience"),
    Claim("table5-second-order", "Table 5, Eq. 9",
          "A first-order look-ahead does about as well as the second-order one and is cheaper.",
          "first order about as accurate, much faster", "ablations"),
    Claim("figure12-cosine", "Appendix E, Figure 12",
          "In the first epoch of experience 2, cos(g1, g2) of HN-4 is negative, whatever the seed.",
          "negative on every seed shown", "cosine"),
)
CLAIM_IDS = frozenset(c.id for c in CLAIMS)


def claims_path(notebook: str) -> Path:
    """Where :func:`record` writes: ``$PHN_CLAIMS_FILE`` if set, else ``runs/ledger/<notebook>.claims.json``."""
    from phn.train import runs_dir

    target = os.environ.get(ENV_FILE)
    return Path(target) if target else runs_dir() / "ledger" / f"{notebook}{SUFFIX}"


def claims_directory() -> Path:
    """The directory a ledger reads by default: the one :func:`claims_path` writes to (for a notebook run
    by ``python -m phn notebook``, the folder of its output; ``make book``: ``book/executed``)."""
    return claims_path("ledger").parent


def record(notebook: str, findings: Sequence[Finding], path: str | os.PathLike | None = None,
           not_measured: Mapping[str, str] | None = None) -> Path:
    """Write ``findings`` of ``notebook`` as JSON (atomically) and return the file's path. The file also
    names the code that measured them (``"code"``: :func:`phn.provenance.code_provenance`), so two
    ledgers from different builds can say whether they ran the same training code. ``not_measured``:
    claim id -> why this notebook ran without measuring it (e.g. its runs are opt-in at the profile);
    the ledger shows that reason instead of "did not run".

    Raises:
        ValueError: for an unknown claim id in ``not_measured``.
    """
    unknown = sorted(set(not_measured or {}) - CLAIM_IDS)
    if unknown:
        raise ValueError(f"unknown claim(s) {unknown}; known: {sorted(CLAIM_IDS)}")
    target = Path(path) if path is not None else claims_path(notebook)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {"notebook": notebook, "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "code": code_provenance(), "findings": [dataclasses.asdict(f) for f in findings],
               "not_measured": dict(not_measured or {})}
    partial = target.with_name(target.name + ".tmp")
    partial.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")
    os.replace(partial, target)
    return target


def load_findings(directory: str | os.PathLike) -> pd.DataFrame:
    """Every finding in ``directory/*.claims.json``: columns claim, ours, verdict, configuration,
    notebook, written, file, phn_sha256 and git_commit (the code that recorded it; None for files
    written before claims named their code). A file that is not a claims file is named in the error."""
    rows = []
    for file in claims_files(directory):
        try:
            payload = json.loads(file.read_text())
            code = payload.get("code") or {}
            for values in payload["findings"]:
                finding = Finding(**values)
                rows.append({**dataclasses.asdict(finding), "notebook": payload["notebook"],
                             "written": payload["written"], "file": file.name,
                             "phn_sha256": code.get("phn_sha256"), "git_commit": code.get("git_commit")})
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"{file}: not a claims file written by phn.ledger.record ({err})") from err
    columns = ["claim", "ours", "verdict", "configuration", "notebook", "written", "file", "phn_sha256", "git_commit"]
    return pd.DataFrame(rows, columns=columns)


def not_measured_reasons(directory: str | os.PathLike) -> dict[str, str]:
    """Claim id -> why a notebook of ``directory`` ran without measuring it (:func:`record`'s
    ``not_measured``; files written before it existed have none)."""
    reasons: dict[str, str] = {}
    for file in claims_files(directory):
        payload = json.loads(file.read_text())
        for claim, why in (payload.get("not_measured") or {}).items():
            reasons[claim] = f"the {payload['notebook']} notebook ran without it: {why}"
    return reasons


def claims_files(directory: str | os.PathLike) -> list[Path]:
    """The claims files of ``directory`` (``*.claims.json``), sorted; a failed run's
    ``*.partial.claims.json`` left out."""
    return sorted(p for p in Path(directory).glob(f"*{SUFFIX}") if not p.name.endswith(f".partial{SUFFIX}"))


BUILD_FILE = "build.json"


def build_parts(build: Mapping) -> list[dict]:
    """The parts of a recorded ``build.json``: a seed set recorded chapter by chapter
    (``benchmarks/record_ledger.py --add``) has ``"parts"``, each with its command, code, machine
    speed and minutes; a build recorded at once is its own single part."""
    return [dict(part) for part in build["parts"]] if "parts" in build else [dict(build)]


def code_versions(directory: str | os.PathLike) -> dict[str, set[str]]:
    """Which code wrote the claims of ``directory``: ``{"phn_sha256": {...}, "git_commit": {...}}``, the
    fingerprints (:func:`phn.provenance.source_fingerprint`) and commits named by its claims files, or,
    for files written before claims named their code, by the folder's recorded ``build.json``
    (``benchmarks/record_ledger.py``). Empty sets: unknown."""
    versions: dict[str, set[str]] = {"phn_sha256": set(), "git_commit": set()}
    sources = [json.loads(f.read_text()).get("code") for f in claims_files(directory)]
    build = recorded_build(directory)
    if build is not None:
        sources.extend(part.get("code") for part in build_parts(build))
    for code in sources:
        for key in versions:
            if code and code.get(key):
                versions[key].add(code[key])
    return versions


def recorded_build(directory: str | os.PathLike) -> dict | None:
    """The ``build.json`` that ``benchmarks/record_ledger.py`` wrote into ``directory``, or None."""
    build = Path(directory) / BUILD_FILE
    return json.loads(build.read_text()) if build.is_file() else None


def build_times(directory: str | os.PathLike, measure_img_s: Callable[[], float]) -> tuple[pd.DataFrame, str]:
    """How long each notebook of the build in ``directory`` ran, and one sentence naming the machine.

    The minutes are papermill's record in the executed notebooks of ``directory``; for a recorded
    ledger without them, its ``build.json``. Every time is put beside the speed of the machine that
    ran it: ``measure_img_s()`` (e.g. :func:`phn.machine.plain_images_per_second`, called only for a
    build of this machine) or the img/s recorded with the build.

    Returns:
        A table (notebook, minutes, minutes at 600 img/s, parameters; empty when nothing is known) and
        the sentence (the total and the machine; empty with the table).
    """
    times, build = durations(directory), recorded_build(directory)
    parts = [part for part in build_parts(build) if part.get("minutes")] if build is not None else []
    recorded = times.empty and bool(parts)
    if recorded:
        times = pd.concat([pd.DataFrame({"notebook": list(part["minutes"]), "minutes": list(part["minutes"].values()),
                                         "parameters": "", "img_s": float(part["plain_img_s"])}) for part in parts],
                          ignore_index=True)
    if times.empty:
        return times[["notebook", "minutes", "parameters"]], ""
    if not recorded:
        times = times.assign(img_s=measure_img_s())
    scaled = scaled_minutes(times.minutes, times.img_s)
    shown = times[["notebook", "minutes", "parameters"]].assign(**{f"minutes at {REFERENCE_IMG_S:.0f} img/s": scaled})
    total = times.minutes.sum()
    head = f"Total: **{total:.1f} minutes** ({float(scaled.sum()):.1f} at {REFERENCE_IMG_S:.0f} img/s)"
    if not recorded:
        return shown, f"{head}; {speed_line(float(times.img_s.iloc[0]))}."

    def described(part: Mapping) -> str:
        commit = (part.get("code") or {}).get("git_commit") or "unknown"
        return (f"recorded with `{part['command']}` on {str(part.get('recorded', ''))[:10]} at commit "
                f"`{commit[:7]}`, on a machine that trained the plain slim ResNet-18 at "
                f"{float(part['plain_img_s']):,.0f} img/s")

    if len(parts) == 1:
        return shown, f"{head}; {described(parts[0])}."
    return shown, f"{head}; in {len(parts)} parts: " + "; ".join(
        f"{', '.join(part['minutes'])} {described(part)}" for part in parts) + "."


def same_code_sentence(first: str | os.PathLike, second: str | os.PathLike) -> str:
    """One sentence for a page that compares two ledgers: whether both seed sets were measured by the
    same training code (the same :func:`phn.provenance.source_fingerprint`, the cache key's code part),
    naming the fingerprints and commits."""
    a, b = code_versions(first), code_versions(second)

    def short(v: dict[str, set[str]], key: str, digits: int) -> str:
        return ", ".join(sorted(x[:digits] for x in v[key]))

    def named(v: dict[str, set[str]]) -> str:
        commits = short(v, "git_commit", 7)
        return f"phn sha256 {short(v, 'phn_sha256', 12) or 'unknown'}" + (f", commit {commits}" if commits else "")

    if not a["phn_sha256"] or not b["phn_sha256"]:
        return (f"The training code of one seed set is not recorded (first: {named(a)}; second: {named(b)}): "
                "the two may differ by more than their seeds.")
    if len(a["phn_sha256"] | b["phn_sha256"]) == 1:
        commits = list(dict.fromkeys(short(v, "git_commit", 7) or "unknown" for v in (a, b)))  # once if the same
        return (f"Both seed sets ran on the same training code (phn sha256 {short(a, 'phn_sha256', 12)}; "
                f"commit {' and '.join(commits)}).")
    return (f"The seed sets ran on different training code (first: {named(a)}; second: {named(b)}): they differ "
            "by more than their seeds, and a changed verdict may come from the code.")


def claims_notebook(file: Path) -> str:
    """The notebook that wrote the claims file ``file`` (its ``"notebook"``; else its name)."""
    return json.loads(file.read_text()).get("notebook", file.name[: -len(SUFFIX)])


def notebooks_recorded(directory: str | os.PathLike) -> list[str]:
    """The notebooks that wrote a claims file in ``directory`` (the chapters that ran in that build or
    seed set), sorted."""
    return sorted({claims_notebook(file) for file in claims_files(directory)})


def coverage_sentence(first: str | os.PathLike, second: str | os.PathLike) -> str:
    """One sentence for a page that compares two ledgers: the chapters only one of them ran (a seed set
    recorded chapter by chapter may lack some); empty when both ran the same chapters."""
    a, b = set(notebooks_recorded(first)), set(notebooks_recorded(second))
    if a == b:
        return ""
    gaps = [f"the {which} set lacks {', '.join(sorted(missing))}" for which, missing
            in (("first", b - a), ("second", a - b)) if missing]
    return (f"Not every chapter ran in both sets: {'; '.join(gaps)}. Their claims are marked \"one set only\", "
            "not compared.")


def ledger_table(directory: str | os.PathLike, claims: Iterable[Claim] = CLAIMS) -> pd.DataFrame:
    """One row per claim of the catalogue (several when notebooks recorded several findings for it):
    where, claim, paper (quoted), ours, verdict, configuration, notebook, and ran (whether the claim's
    notebook ran in this build at all: a seed set recorded chapter by chapter may lack some). Claims no
    notebook recorded are ``not measured``, with what they need."""
    findings = load_findings(directory)
    reasons = not_measured_reasons(directory)
    ran = set(notebooks_recorded(directory))
    rows = []
    for claim in claims:
        found = findings[findings.claim == claim.id]
        base = {"where": claim.where, "claim": claim.claim, "paper": claim.paper, "notebook": claim.notebook,
                "ran": claim.notebook in ran}
        if found.empty:
            why = reasons.get(claim.id, f"the {claim.notebook} notebook did not run in this build")
            if claim.needs:
                why += f"; the paper's setting needs {claim.needs}"
            rows.append({**base, "ours": "", "verdict": "not measured", "configuration": why})
        for finding in found.itertuples():
            rows.append({**base, "ours": finding.ours, "verdict": finding.verdict,
                         "configuration": finding.configuration})
    return pd.DataFrame(rows, columns=["where", "claim", "paper", "ours", "verdict", "configuration", "notebook", "ran"])


def verdict_from(outcomes: Sequence[bool], paper_setting: bool, most: bool = False) -> Verdict:
    """The verdict of a claim checked in several parts (depths, seeds, ...): every part holds (or, with
    ``most``, more than half do): ``holds`` in the paper's setting, else ``holds qualitatively``; none:
    ``does not hold at this scale``; some, or no parts: ``inconclusive``."""
    if not outcomes:
        return "inconclusive"
    if all(outcomes) or (most and sum(outcomes) > len(outcomes) / 2):
        return "holds" if paper_setting else "holds qualitatively"
    return "does not hold at this scale" if not any(outcomes) else "inconclusive"


# --- The statistical verdict rule: one rule for every notebook ------------------------------------

Outcome = Literal["greater", "less", "equivalent", "different", "inconclusive"]
COMPARE_OUTCOMES: tuple[str, ...] = ("greater", "less", "inconclusive")
EQUIVALENCE_OUTCOMES: tuple[str, ...] = ("equivalent", "different", "inconclusive")
CONFIDENCE = 0.95

RULE_MARKDOWN = """\
How a verdict is decided (one rule, the same in every notebook):

- **Paired by seed.** Two strategies are compared through the seed-paired difference `a - b` (same seed,
  same class order), one value per seed.
- **95 % interval.** Its 95 % confidence interval is the Student t interval with n - 1 degrees of freedom:
  mean ± t(0.975, n - 1) · sd / √n (sd with n - 1 in the denominator). One seed gives an infinite interval,
  which decides nothing.
- **A difference counts** only when that interval excludes zero, or the stated margin: "greater" when its
  lower end is above +margin, "less" when its upper end is below -margin; otherwise "inconclusive".
- **Similarity** ("about as accurate", "the drop is minimal") needs a stated equivalence margin m:
  "equivalent" when the whole interval lies within [-m, m] (TOST-style, with the same 95 % interval),
  "different" when it lies wholly outside that band, otherwise "inconclusive".
- **Claims in several parts** (depth by depth, experience by experience, never one outlier such as the
  worst HN against the best LR): every part as the paper says gives *holds*; no part as the paper says
  and at least one decided against it (the opposite decisive outcome, the rest undecided) gives
  *does not hold at this scale*; anything else (parts as the paper says beside parts against or
  undecided, or every part undecided) is *inconclusive*, and so is a claim with no parts. A claim the
  paper makes "in most cases" holds when more than half of its parts go the paper's way.
- **Holds needs the paper's setting.** In another setting (smaller data, fewer epochs, another dataset)
  a claim whose parts all go the paper's way *holds qualitatively*.
- **Only converged strategies are judged.** Claims about forgetting, noise or stability that rest on a
  strategy which did not converge, or did not learn clearly above chance, are *inconclusive*, and the
  row says which strategy was not judged.
"""


@dataclass(frozen=True)
class Interval:
    """A confidence interval of the seed-paired difference ``a - b`` (see :func:`paired_interval`).

    Attributes:
        mean: mean of the per-seed differences.
        low: lower end (``-inf`` for a single seed).
        high: upper end (``inf`` for a single seed).
        n: number of seeds (pairs).
        confidence: the interval's confidence level.
    """

    mean: float
    low: float
    high: float
    n: int
    confidence: float = CONFIDENCE

    def __str__(self) -> str:
        return f"{self.mean:+.1f} [{self.low:.1f}, {self.high:.1f}]"


def _values(values: Sequence[float], name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence of per-seed values, got shape {array.shape}")
    if np.isnan(array).any():
        raise ValueError(f"{name} contains NaN at seed index {np.flatnonzero(np.isnan(array)).tolist()}")
    return array


def paired_interval(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """The Student t interval of the seed-paired difference ``a - b``.

    ``a[i]`` and ``b[i]`` must come from the same seed (and class order). The interval is
    ``mean ± t.ppf((1 + confidence) / 2, n - 1) * sd / sqrt(n)``, ``sd`` the sample standard deviation
    of the differences (``ddof=1``). A single pair gives ``(-inf, inf)``, never decisive; identical
    differences on every seed give a zero-width interval.

    Args:
        a: per-seed values of the first strategy.
        b: per-seed values of the second strategy, in the same seed order.
        confidence: confidence level, strictly between 0 and 1.

    Returns:
        The :class:`Interval` of ``a - b``.

    Raises:
        ValueError: if ``a`` and ``b`` differ in length (both lengths are named), are empty, contain NaN,
            or ``confidence`` is not in (0, 1).
    """
    from scipy import stats

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x, y = _values(a, "a"), _values(b, "b")
    if len(x) != len(y):
        raise ValueError(f"a and b must pair seed by seed: a has {len(x)} values, b has {len(y)}")
    n = len(x)
    if n == 0:
        raise ValueError("a and b are empty: no seed to compare")
    diff = x - y
    mean = float(diff.mean())
    if n == 1:
        return Interval(mean, -math.inf, math.inf, 1, confidence)
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1) * diff.std(ddof=1) / math.sqrt(n))
    return Interval(mean, mean - half, mean + half, n, confidence)


def interval_text(interval: Interval, unit: str = "points", digits: int = 1) -> str:
    """An interval for prose, e.g. ``"+3.2 points (95 % interval 1.1 to 5.3, 3 seeds)"``.

    Args:
        interval: from :func:`paired_interval`.
        unit: the unit of the difference (``""`` for none).
        digits: decimals shown.
    """
    level = f"{interval.confidence * 100:g} %"
    unit = f" {unit}" if unit else ""
    seeds = f"{interval.n} seed" + ("" if interval.n == 1 else "s")
    return (f"{interval.mean:+.{digits}f}{unit} ({level} interval {interval.low:.{digits}f} to "
            f"{interval.high:.{digits}f}, {seeds})")


def _check_margin(margin: float) -> None:
    if not (margin >= 0 and math.isfinite(margin)):
        raise ValueError(f"margin must be a finite number >= 0, got {margin}")


def compare(a: Sequence[float], b: Sequence[float], margin: float = 0.0,
            confidence: float = CONFIDENCE) -> Literal["greater", "less", "inconclusive"]:
    """Whether ``a`` exceeds ``b`` by more than ``margin``, seed-paired (see :data:`RULE_MARKDOWN`).

    "HN forgets less than LR" is ``compare(lr_forgetting, hn_forgetting) == "greater"``.

    Args:
        a: per-seed values of the first strategy.
        b: per-seed values of the second, same seeds in the same order.
        margin: the stated margin (>= 0), in the values' unit.
        confidence: confidence level of the interval.

    Returns:
        ``"greater"`` when the interval's low end is > ``margin``, ``"less"`` when its high end is
        < ``-margin``, otherwise ``"inconclusive"``.

    Raises:
        ValueError: as :func:`paired_interval`, or for a negative margin.
    """
    _check_margin(margin)
    interval = paired_interval(a, b, confidence)
    if interval.low > margin:
        return "greater"
    if interval.high < -margin:
        return "less"
    return "inconclusive"


def equivalent(a: Sequence[float], b: Sequence[float], margin: float,
               confidence: float = CONFIDENCE) -> Literal["equivalent", "different", "inconclusive"]:
    """Whether ``a`` and ``b`` agree within an equivalence ``margin``, seed-paired (TOST-style).

    Args:
        a: per-seed values of the first strategy.
        b: per-seed values of the second, same seeds in the same order.
        margin: the stated equivalence margin (> 0), in the values' unit.
        confidence: confidence level of the interval (the same interval as :func:`compare`).

    Returns:
        ``"equivalent"`` when the whole interval lies within ``[-margin, margin]`` (ends included),
        ``"different"`` when it lies wholly outside the band (low > ``margin`` or high < ``-margin``),
        otherwise ``"inconclusive"``.

    Raises:
        ValueError: as :func:`paired_interval`, or for a margin that is not > 0.
    """
    _check_margin(margin)
    if margin == 0:
        raise ValueError("an equivalence margin must be > 0")
    interval = paired_interval(a, b, confidence)
    if -margin <= interval.low and interval.high <= margin:
        return "equivalent"
    if interval.low > margin or interval.high < -margin:
        return "different"
    return "inconclusive"


_OPPOSITE = {"greater": "less", "less": "greater", "equivalent": "different", "different": "equivalent"}


def verdict_of(parts: Sequence[str], expected: str | Sequence[str], paper_setting: bool, most: bool = False) -> Verdict:
    """The verdict of a claim checked in several parts, each an outcome of :func:`compare` or
    :func:`equivalent` (depth by depth, never one outlier against another).

    Each part is *as expected* (the outcome the paper claims), *against* (the opposite decisive outcome:
    ``"less"`` for ``"greater"`` and back, ``"different"`` for ``"equivalent"`` and back) or
    *undecided* (``"inconclusive"``). The verdict is

    - ``holds`` (``paper_setting``) or ``holds qualitatively`` (otherwise): every part as expected;
    - ``does not hold at this scale``: no part as expected and at least one against (the others
      undecided);
    - ``inconclusive``: anything else (parts as expected beside parts against or undecided, only
      undecided parts), and no parts at all.

    With ``most`` (a claim the paper makes "in most cases"), more than half of the parts as expected
    is enough for ``holds``; the other verdicts are as above.

    Args:
        parts: one outcome per part.
        expected: the outcome the paper claims, one for all parts or one per part; one of
            ``"greater"``, ``"less"``, ``"equivalent"``, ``"different"``.
        paper_setting: whether the numbers come from the paper's own setting.
        most: the claim holds "in most cases" (more than half of the parts).

    Returns:
        One of :data:`VERDICTS` other than ``"not measured"``.

    Raises:
        ValueError: for a per-part ``expected`` of another length than ``parts``, an unknown expected
            outcome, or a part that is not an outcome of the same test as its expected one (e.g.
            ``"equivalent"`` where ``"greater"`` is expected).
    """
    parts = list(parts)
    wanted = [expected] * len(parts) if isinstance(expected, str) else list(expected)
    if len(wanted) != len(parts):
        raise ValueError(f"expected has {len(wanted)} outcomes for {len(parts)} parts")
    as_expected = against = 0
    for i, (part, want) in enumerate(zip(parts, wanted)):
        if want not in _OPPOSITE:
            raise ValueError(f"expected outcome must be one of {sorted(_OPPOSITE)}, got {want!r}")
        if part not in (want, _OPPOSITE[want], "inconclusive"):
            raise ValueError(f"part {i}: outcome {part!r} does not answer the expected {want!r} "
                             f"(one of {[want, _OPPOSITE[want], 'inconclusive']})")
        as_expected += part == want
        against += part == _OPPOSITE[want]
    if parts and (as_expected == len(parts) or (most and as_expected > len(parts) / 2)):
        return "holds" if paper_setting else "holds qualitatively"
    if as_expected == 0 and against > 0:
        return "does not hold at this scale"
    return "inconclusive"


def judged(converged: bool, above_chance: bool) -> bool:
    """Whether a strategy is judged at all: it converged and learned clearly above chance.

    Claims resting on a strategy that is not judged are ``inconclusive`` (with
    :func:`not_judged_reason`).
    """
    return bool(converged) and bool(above_chance)


def unconverged(labels: Sequence[str], converged: Mapping[str, bool] | None) -> list[str]:
    """The ``labels`` that ``converged`` (strategy -> converged at this profile; None: not checked)
    marks False: the strategies whose claims are not judged."""
    return [label for label in labels if converged is not None and converged.get(label) is False]


def not_judged_reason(labels_not_converged: Sequence[str], labels_below_chance: Sequence[str] = ()) -> str:
    """Why a claim is not judged, e.g. ``"not judged: HN-3 not shown to converge at this profile"``.

    "Not shown to converge" covers both outcomes of the convergence check that stop a judgement:
    *not converged* (doubling the epochs gained more than the tolerance) and *undecided* (the check
    could not tell, e.g. only E/2 -> E was run and it gained more than the tolerance).

    Args:
        labels_not_converged: strategies not shown to converge (not converged or undecided).
        labels_below_chance: strategies that did not learn clearly above chance.

    Raises:
        ValueError: if both are empty (then the claim is judged).
    """
    reasons = []
    if labels_not_converged:
        reasons.append(f"{', '.join(labels_not_converged)} not shown to converge")
    if labels_below_chance:
        reasons.append(f"{', '.join(labels_below_chance)} not clearly above chance")
    if not reasons:
        raise ValueError("every strategy is judged: no reason to give")
    return f"not judged: {'; '.join(reasons)} at this profile"


def findings_markdown(findings: Sequence[Finding]) -> str:
    """Findings as a Markdown list: the claim in the paper's words, the verdict in bold, our numbers."""
    claims = {c.id: c for c in CLAIMS}
    return "\n".join(f"- {claims[f.claim].where}: *{claims[f.claim].claim}* **{f.verdict.capitalize()}** here: {f.ours}"
                     for f in findings)


# Fixed column widths, so the table fits the book's text column (long intervals wrap inside their cell).
LEDGER_CSS = """<style>
table.phn-ledger { border-collapse: collapse; font-size: 0.85em; width: 100%; table-layout: fixed; }
table.phn-ledger th, table.phn-ledger td { border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left;
  vertical-align: top; overflow-wrap: break-word; }
table.phn-ledger th:nth-child(1) { width: 10%; } table.phn-ledger th:nth-child(2) { width: 17%; }
table.phn-ledger th:nth-child(3) { width: 16%; } table.phn-ledger th:nth-child(4) { width: 28%; }
table.phn-ledger th:nth-child(5) { width: 14%; } table.phn-ledger th:nth-child(6) { width: 15%; }
table.phn-ledger td:nth-child(5) { font-weight: 600; }
</style>
"""


def ledger_html(table: pd.DataFrame) -> str:
    """:func:`ledger_table` as an HTML table for the book (columns Where, Claim, Paper, Ours, Verdict,
    Configuration; every cell escaped). The book renders HTML outputs as tables, where a Markdown
    table in an output can come out as raw text."""
    shown = table.drop(columns=["notebook", "ran"], errors="ignore").rename(columns=str.capitalize)
    return LEDGER_CSS + shown.to_html(index=False, escape=True, classes="phn-ledger", border=0, na_rep="")


def verdict_counts(table: pd.DataFrame) -> pd.Series:
    """How many rows of :func:`ledger_table` carry each verdict (every verdict listed, zeros included)."""
    return table.verdict.value_counts().reindex(list(VERDICTS), fill_value=0)


_SIDE = {"holds": "holds", "holds qualitatively": "holds", "does not hold at this scale": "does not hold"}


COMPARISON_COLUMNS = {"where": "Where", "claim": "Claim", "first": "First set", "second": "Second set",
                      "change": "Change", "first_ours": "First set: ours", "second_ours": "Second set: ours"}
"""Column headings of :func:`verdict_changes` on the ledger page."""


def verdict_changes(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """Two ledgers (:func:`ledger_table`, e.g. the book's seeds and a second seed set) side by side.

    Returns:
        One row per claim row: where, claim, first and second (verdicts), first_ours and second_ours
        (the intervals behind them), and change: ``"same"``; ``"flip"`` when one says the claim holds
        (qualitatively or not) and the other that it does not hold; ``"one set only"`` when the claim's
        notebook did not run in one of them (column ``ran`` of :func:`ledger_table`: a seed set
        recorded chapter by chapter may lack a chapter); ``"changed"`` for any other difference (e.g.
        holds <-> inconclusive, or measured in one set only because the other ran without it).
    """
    def keyed(table: pd.DataFrame) -> pd.DataFrame:
        ran = table["ran"] if "ran" in table else pd.Series(True, index=table.index)
        return (table.assign(ran=ran.astype(bool), n=table.groupby(["where", "claim"]).cumcount())
                .set_index(["where", "claim", "n"]))

    a, b = keyed(first), keyed(second)
    joined = a[["verdict", "ours", "ran"]].merge(b[["verdict", "ours", "ran"]], how="outer", left_index=True,
                                                right_index=True, suffixes=("_1", "_2"))
    rows = []
    for (where, claim, _), row in joined.iterrows():
        v1, v2 = row.verdict_1, row.verdict_2
        sides = {_SIDE.get(v1), _SIDE.get(v2)}
        if v1 == v2:
            change = "same"
        elif not (row.ran_1 == True and row.ran_2 == True):  # noqa: E712 (NaN: the row is missing there)
            change = "one set only"
        else:
            change = "flip" if sides == {"holds", "does not hold"} else "changed"
        rows.append({"where": where, "claim": claim, "first": v1, "second": v2, "change": change,
                     "first_ours": row.ours_1, "second_ours": row.ours_2})
    return pd.DataFrame(rows, columns=["where", "claim", "first", "second", "change", "first_ours", "second_ours"])


def paired_values(table: pd.DataFrame, key: str, a: str, b: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """``metric`` of the rows ``table[key] == a`` and ``== b`` on the seeds both have (column
    ``seed``), in seed order: the inputs of :func:`compare` and :func:`equivalent`."""
    wide = table[table[key].isin([a, b])].pivot_table(index="seed", columns=key, values=metric).dropna()
    if a not in wide or b not in wide:
        return np.array([]), np.array([])
    return wide[a].to_numpy(), wide[b].to_numpy()


def judge(claim: str, specs: Sequence[tuple[str, str, str, str]], table: pd.DataFrame, text: str,
          configuration: str, paper_setting: bool, key: str = "strategy", margin: float = 1.0,
          equivalence: float = 2.0, not_converged: Sequence[str] = (), below_chance: Sequence[str] = (),
          most: bool = False, digits: int = 1) -> Finding:
    """One claim decided by the rule (:data:`RULE_MARKDOWN`) from per-seed rows.

    Args:
        claim: a :attr:`Claim.id`.
        specs: one ``(a, b, metric, expected)`` per part: the seed-paired difference ``metric`` of
            ``a`` minus ``b`` (rows whose ``key`` is ``a`` / ``b``), and the outcome the paper
            claims (``"greater"``, ``"less"``: :func:`compare` with ``margin``; ``"equivalent"``:
            :func:`equivalent` with ``equivalence``).
        table: one row per (``key``, ``seed``) with the metrics.
        text: what the intervals are, for the ledger's prose.
        configuration: the ledger's configuration column.
        paper_setting: the numbers come from the paper's setting (``holds`` possible).
        not_converged, below_chance: strategies the claim rests on that are not judged
            (:func:`not_judged_reason`): then the verdict is ``inconclusive``.
        most: the claim holds "in most cases" (:func:`verdict_of`).
        digits: decimals of the intervals shown (``mean [low, high]``, 95 %).

    Returns:
        The :class:`Finding`: every part's interval in ``ours``.
    """
    parts, shown = [], []
    for a, b, metric, expected in specs:
        x, y = paired_values(table, key, a, b, metric)
        if not len(x):
            parts.append("inconclusive")
            shown.append(f"{metric.replace('_', ' ')} {a} - {b}: no common seed")
            continue
        parts.append(equivalent(x, y, equivalence) if expected == "equivalent" else compare(x, y, margin))
        i = paired_interval(x, y)
        shown.append(f"{metric.replace('_', ' ')} {a} - {b} {i.mean:+.{digits}f} [{i.low:.{digits}f}, {i.high:.{digits}f}]")
    skipped = bool(not_converged or below_chance)
    verdict = "inconclusive" if skipped or not specs else verdict_of(parts, [s[3] for s in specs], paper_setting, most)
    ours = f"{text}: " + "; ".join(shown)
    if skipped:
        ours += f" ({not_judged_reason(not_converged, below_chance)})"
    return Finding(claim, ours + ".", verdict, configuration)


__all__ = [
    "CLAIMS", "Claim", "Finding", "LEDGER_CSS", "ledger_html", "VERDICTS", "Verdict", "claims_directory", "claims_path", "findings_markdown", "ledger_table", "verdict_from",
    "COMPARISON_COLUMNS", "load_findings", "not_measured_reasons", "notebooks_recorded", "claims_notebook", "build_parts", "coverage_sentence", "record", "verdict_counts", "BUILD_FILE", "build_times", "claims_files", "code_versions", "recorded_build",
    "same_code_sentence",
    "COMPARE_OUTCOMES", "CONFIDENCE", "EQUIVALENCE_OUTCOMES", "Interval", "Outcome", "RULE_MARKDOWN", "compare",
    "equivalent", "interval_text", "judge", "judged", "not_judged_reason", "paired_interval", "paired_values", "unconverged", "verdict_changes", "verdict_of",
]
