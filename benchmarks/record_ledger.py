"""Record one build's ledger under ``benchmarks/results/`` so another session can compare with it.

A whole seed set of the section chapters takes hours on this project's CPUs, and every session's machine
starts with an empty run cache: the book's seeds and a second seed set rarely fit one session. This
script keeps what a build measured, so the next one can be compared with it::

    make book                                   # or: make second-seeds
    make record-ledger                          # or: make record-second-seeds
    # which is: .venv/bin/python benchmarks/record_ledger.py --profile cpu --claims book/executed \\
    #     --command 'make book PROFILE=cpu'  (seeds: the profile's; out: benchmarks/results/ledger-cpu-seeds-0-1-2)
    # later, on any machine, both ledgers side by side (the ledger page's second half):
    .venv/bin/python -m phn notebook notebooks/ledger.ipynb /tmp/ledger.ipynb \\
        -p claims_dir ../benchmarks/results/ledger-cpu-seeds-0-1-2 -p compare_dir ../runs/second-seeds

On a slow machine even one seed set outlasts a session: ``--add`` records it chapter by chapter, each
part with its own command, code, machine and times (``make second-seeds SECTIONS=benchmarks`` in one
session, ``SECTIONS='freeze noise'`` in the next)::

    make second-seeds SECTIONS=benchmarks && make record-second-seeds SECTIONS=benchmarks
    make second-seeds SECTIONS='freeze noise' && make record-second-seeds SECTIONS='freeze noise' ADD=1

(``SECTIONS`` there is ``--notebooks``: only those chapters of ``runs/second-seeds`` are recorded, so a
part run beside earlier ones in the same folder keeps its own times.)

It copies every ``*.claims.json`` of ``--claims`` and writes

- ``build.json``: the command, profile, seeds, the code (``phn.provenance.code_provenance`` of the ``phn``
  this script imports: run it with the checkout that built), the machine's plain slim ResNet-18 img/s,
  each notebook's minutes (papermill's record) beside the minutes at 600 img/s, and the date;
- ``ledger.csv``: the ledger's rows (where, claim, verdict, ours, configuration).

With ``--add``, ``build.json`` holds one such record per part (``"parts"``, each naming its
``notebooks``); a chapter recorded again replaces its earlier part's claims and times.

"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import sys
from pathlib import Path

from phn.ledger import BUILD_FILE, SUFFIX, build_parts, claims_files, claims_notebook, ledger_table, recorded_build
from phn.machine import plain_images_per_second, scaled_minutes
from phn.notebooks import durations
from phn.profiles import PROFILES
from phn.provenance import REPO_DIR, code_provenance

RESULTS = REPO_DIR / "benchmarks" / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=Path, required=True,
                        help="the build's folder of *.claims.json and executed notebooks (book/executed, runs/second-seeds)")
    parser.add_argument("--out", type=Path, default=None,
                        help="the folder to write (default benchmarks/results/ledger-PROFILE-seeds-S1-S2-...)")
    parser.add_argument("--command", required=True, help="the command that built it, e.g. 'make book'")
    parser.add_argument("--profile", default="cpu", help="the profile it ran at (default cpu)")
    parser.add_argument("--seeds", type=parse_seeds, default=None,
                        help="the seeds of its section chapters, as make's SEEDS ('[3, 4, 5]') or '3 4 5' "
                             "(default: the profile's, phn/profiles.py)")
    parser.add_argument("--img-s", type=float, default=None,
                        help="the machine's plain slim ResNet-18 img/s measured alone beside the build "
                             "(default: measure now, which is only right on the machine that built)")
    parser.add_argument("--wall-minutes", type=float, default=None, help="the command's whole wall time, if timed")
    parser.add_argument("--note", default="", help="anything a reader must know about this build")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--notebooks", nargs="+", default=None, metavar="NAME",
                        help="record only these chapters of --claims (default: every one there), e.g. the part "
                             "of a seed set this session ran beside earlier parts in the same folder")
    parser.add_argument("--add", action="store_true",
                        help="add these chapters to an existing --out of the same profile and seeds (a seed set "
                             "recorded chapter by chapter); a chapter already there is replaced")
    args = parser.parse_args(argv)
    if args.add and args.overwrite:
        parser.error("--add keeps the chapters already recorded, --overwrite replaces them: pass one")
    if args.profile not in PROFILES:
        parser.error(f"unknown profile {args.profile!r}; valid profiles: {', '.join(PROFILES)}")
    if args.seeds is None:
        args.seeds = list(PROFILES[args.profile].shared["seeds"])
    if args.out is None:
        args.out = RESULTS / f"ledger-{args.profile}-seeds-{'-'.join(map(str, args.seeds))}"
    return args


def parse_seeds(text: str) -> list[int]:
    """``'[3, 4, 5]'``, ``'3,4,5'`` or ``'3 4 5'`` -> ``[3, 4, 5]``."""
    parts = text.replace("[", " ").replace("]", " ").replace(",", " ").split()
    try:
        seeds = [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be integers, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("no seeds given")
    return seeds


def record(args: argparse.Namespace) -> Path:
    """Copy the claims and write ``build.json`` (:data:`phn.ledger.BUILD_FILE`) and ``ledger.csv`` into ``args.out``; return it."""
    notebook_of = {file: claims_notebook(file) for file in claims_files(args.claims)}
    files = [f for f, name in notebook_of.items() if args.notebooks is None or name in args.notebooks]
    if not files:
        chosen = f" of {', '.join(args.notebooks)}" if args.notebooks is not None else ""
        raise SystemExit(f"record_ledger: no *{SUFFIX}{chosen} in {args.claims}: build the book (or make second-seeds) first")
    chapters = sorted({notebook_of[f] for f in files})
    earlier = recorded_build(args.out) if args.add and args.out.exists() else None
    if args.add and args.out.exists() and earlier is None:
        raise SystemExit(f"record_ledger: {args.out} has no {BUILD_FILE} to add to")
    if earlier is not None and (earlier.get("profile"), list(earlier.get("seeds") or [])) != (args.profile, args.seeds):
        raise SystemExit(f"record_ledger: {args.out} holds profile {earlier.get('profile')} seeds {earlier.get('seeds')}, "
                         f"not profile {args.profile} seeds {args.seeds}: a seed set's parts must agree")
    if args.out.exists() and not (args.overwrite or args.add):
        raise SystemExit(f"record_ledger: {args.out} exists; pass --overwrite to replace it or --add to add chapters")
    if args.out.exists() and args.overwrite:
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    for file in files:
        shutil.copy2(file, args.out / file.name)
    img_s = args.img_s if args.img_s is not None else plain_images_per_second()
    times = durations(args.claims)
    if args.notebooks is not None:
        times = times[times.notebook.isin(chapters)]
    part = {
        "command": args.command, "code": code_provenance(),
        "plain_img_s": round(img_s, 1), "machine": platform.processor() or platform.machine(),
        "notebooks": chapters,
        "minutes": {row.notebook: round(row.minutes, 2) for row in times.itertuples()},
        "minutes_at_600_img_s": {row.notebook: round(scaled_minutes(row.minutes, img_s), 2) for row in times.itertuples()},
        "total_minutes": round(float(times.minutes.sum()), 2),
        "total_minutes_at_600_img_s": round(scaled_minutes(float(times.minutes.sum()), img_s), 2),
        "wall_minutes": args.wall_minutes, "note": args.note,
        "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
    }
    if earlier is None:
        build = {"profile": args.profile, "seeds": args.seeds, **part}
    else:
        replaced = set(part["notebooks"]) | set(part["minutes"])
        kept = []
        for old in build_parts(earlier):
            # a build recorded at once becomes the first part: its profile and seeds are the set's
            old = {key: value for key, value in old.items() if key not in ("profile", "seeds")}
            old["notebooks"] = [n for n in old.get("notebooks", []) if n not in replaced]
            for key in ("minutes", "minutes_at_600_img_s"):
                old[key] = {n: m for n, m in (old.get(key) or {}).items() if n not in replaced}
            if old["notebooks"] or old["minutes"]:
                kept.append(old)
        build = {"profile": args.profile, "seeds": args.seeds, "parts": [*kept, part]}
    (args.out / BUILD_FILE).write_text(json.dumps(build, indent=1) + "\n")
    table = ledger_table(args.out)
    table[["where", "claim", "verdict", "ours", "configuration"]].to_csv(args.out / "ledger.csv", index=False)
    return args.out


def main(argv: list[str] | None = None) -> int:
    out = record(parse_args(argv))
    print(f"recorded {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
