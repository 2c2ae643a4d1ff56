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
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import pandas as pd

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


def describe(config: object) -> str:
    """A notebook's typed config as one line ``name=value, ...`` (the configuration column of a finding);
    marked as a smoke run under the test suite."""
    from phn.config import smoke_enabled, to_dict

    values = to_dict(config)
    text = ", ".join(f"{name}={value}" for name, value in values.items())
    return f"{text} (smoke run)" if smoke_enabled() else text


def claims_path(notebook: str) -> Path:
    """Where :func:`record` writes: ``$PHN_CLAIMS_FILE`` if set, else ``runs/ledger/<notebook>.claims.json``."""
    from phn.train import runs_dir

    target = os.environ.get(ENV_FILE)
    return Path(target) if target else runs_dir() / "ledger" / f"{notebook}{SUFFIX}"


def claims_directory() -> Path:
    """The directory a ledger reads by default: the one :func:`claims_path` writes to (for a notebook run
    by ``python -m phn notebook``, the folder of its output; ``make book``: ``book/executed``)."""
    return claims_path("ledger").parent


def record(notebook: str, findings: Sequence[Finding], path: str | os.PathLike | None = None) -> Path:
    """Write ``findings`` of ``notebook`` as JSON (atomically) and return the file's path."""
    target = Path(path) if path is not None else claims_path(notebook)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {"notebook": notebook, "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "findings": [dataclasses.asdict(f) for f in findings]}
    partial = target.with_name(target.name + ".tmp")
    partial.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")
    os.replace(partial, target)
    return target


def load_findings(directory: str | os.PathLike) -> pd.DataFrame:
    """Every finding in ``directory/*.claims.json``: columns claim, ours, verdict, configuration,
    notebook, written, file. A file that is not a claims file is named in the error."""
    rows = []
    for file in sorted(p for p in Path(directory).glob(f"*{SUFFIX}") if not p.name.endswith(f".partial{SUFFIX}")):
        try:
            payload = json.loads(file.read_text())
            for values in payload["findings"]:
                finding = Finding(**values)
                rows.append({**dataclasses.asdict(finding), "notebook": payload["notebook"],
                             "written": payload["written"], "file": file.name})
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{file}: not a claims file written by phn.ledger.record ({err})") from err
    columns = ["claim", "ours", "verdict", "configuration", "notebook", "written", "file"]
    return pd.DataFrame(rows, columns=columns)


def ledger_table(directory: str | os.PathLike, claims: Iterable[Claim] = CLAIMS) -> pd.DataFrame:
    """One row per claim of the catalogue (several when notebooks recorded several findings for it):
    where, claim, paper (quoted), ours, verdict, configuration, notebook. Claims no notebook recorded
    are ``not measured``, with what they need."""
    findings = load_findings(directory)
    rows = []
    for claim in claims:
        found = findings[findings.claim == claim.id]
        base = {"where": claim.where, "claim": claim.claim, "paper": claim.paper, "notebook": claim.notebook}
        if found.empty:
            why = f"the {claim.notebook} notebook did not run in this build"
            if claim.needs:
                why += f"; the paper's setting needs {claim.needs}"
            rows.append({**base, "ours": "", "verdict": "not measured", "configuration": why})
        for finding in found.itertuples():
            rows.append({**base, "ours": finding.ours, "verdict": finding.verdict,
                         "configuration": finding.configuration})
    return pd.DataFrame(rows, columns=["where", "claim", "paper", "ours", "verdict", "configuration", "notebook"])


def verdict_from(outcomes: Sequence[bool], paper_setting: bool, most: bool = False) -> Verdict:
    """The verdict of a claim checked in several parts (depths, seeds, ...): every part holds (or, with
    ``most``, more than half do): ``holds`` in the paper's setting, else ``holds qualitatively``; none:
    ``does not hold at this scale``; some, or no parts: ``inconclusive``."""
    if not outcomes:
        return "inconclusive"
    if all(outcomes) or (most and sum(outcomes) > len(outcomes) / 2):
        return "holds" if paper_setting else "holds qualitatively"
    return "does not hold at this scale" if not any(outcomes) else "inconclusive"


def findings_markdown(findings: Sequence[Finding]) -> str:
    """Findings as a Markdown list: the claim in the paper's words, the verdict in bold, our numbers."""
    claims = {c.id: c for c in CLAIMS}
    return "\n".join(f"- {claims[f.claim].where}: *{claims[f.claim].claim}* **{f.verdict.capitalize()}** here: {f.ours}"
                     for f in findings)


def verdict_counts(table: pd.DataFrame) -> pd.Series:
    """How many rows of :func:`ledger_table` carry each verdict (every verdict listed, zeros included)."""
    return table.verdict.value_counts().reindex(list(VERDICTS), fill_value=0)


__all__ = [
    "CLAIMS", "Claim", "Finding", "VERDICTS", "Verdict", "claims_directory", "claims_path", "describe", "findings_markdown", "ledger_table", "verdict_from",
    "load_findings", "record", "verdict_counts",
]
