#!/usr/bin/env python3
"""Run the compatibility suite: every case on slurmsky's local backend, compared with real
Slurm, live when the peer is up (shared/tools/slurm-peer-up.sh), else with the stored answers
in tests/compat/expected/. Prints one line per case, a diff for each that differs, and last
the summary line `N passed, M failed` (N identical after normalisation, M differing).

    python tests/compat/run.py                  # auto: live when the peer is up
    python tests/compat/run.py --stored         # against tests/compat/expected/ only
    python tests/compat/run.py -k squeue -v     # cases whose id contains 'squeue', full diffs
    python tests/compat/run.py --ratchet        # exit 1 when fewer than RATCHET are identical
    python tests/compat/run.py --update-ratchet # raise RATCHET to today's count (never lowers)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--live", action="store_true", help="require the peer")
    mode.add_argument("--stored", action="store_true", help="never use the peer")
    ap.add_argument(
        "-k",
        dest="select",
        action="append",
        default=[],
        help="only cases whose id contains this (repeatable)",
    )
    ap.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=int(os.environ.get("COMPAT_JOBS", 16)),
        help="cases run at once (default 16)",
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="full diffs")
    ap.add_argument("--max-diff-lines", type=int, default=40)
    ap.add_argument(
        "--ratchet",
        action="store_true",
        help=f"fail when fewer cases than {harness.RATCHET_FILE.name} are identical",
    )
    ap.add_argument("--update-ratchet", action="store_true")
    ap.add_argument("--report", type=Path, help="write every result (JSON) here")
    ap.add_argument("--keep", action="store_true", help="keep the run directory")
    ap.add_argument("--bin", type=Path, help="slurmsky's bin directory (default: the checkout's)")
    return ap.parse_args(argv)


def select(cases, patterns):
    if not patterns:
        return cases
    return [c for c in cases if any(p in c.id for p in patterns)]


def run_suite(cases, peer, sky, jobs: int, digits: int, on_result=None):
    """Outcomes in case order. Slow cases start first; exclusive ones run alone at the end."""
    outcomes = {}
    shared = [c for c in cases if not c.exclusive]
    shared.sort(key=lambda c: not c.slow)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(harness.run_one, c, peer, sky, digits): c for c in shared}
        for fut in as_completed(futures):
            o = fut.result()
            outcomes[o.case.id] = o
            if on_result:
                on_result(o)
    for c in cases:
        if c.exclusive:
            o = harness.run_one(c, peer, sky, digits)
            outcomes[c.id] = o
            if on_result:
                on_result(o)
    return [outcomes[c.id] for c in cases]


def main(argv=None) -> int:
    args = parse(argv if argv is not None else sys.argv[1:])
    cases = select(harness.load_cases(), args.select)
    if not cases:
        print("no cases selected", file=sys.stderr)
        return 2
    peer_up = not args.stored and harness.PeerSide.is_up()
    if args.live and not peer_up:
        print("the peer is not up (bash shared/tools/slurm-peer-up.sh)", file=sys.stderr)
        return 2
    root = harness.new_root()
    t0 = time.monotonic()
    peer = harness.PeerSide(root) if peer_up else None
    digits = 4
    if peer is not None:
        digits = harness.id_digits(peer.raise_ids_to(1000))
    sky = harness.SkySide(root, bin_dir=args.bin)
    print(
        f"compat: {len(cases)} cases, reference: "
        f"{'live real Slurm (the peer)' if peer else 'stored answers (tests/compat/expected)'}"
        f", run directory {root}",
        flush=True,
    )

    def show(o):
        status = "identical" if o.identical else "differs"
        note = f"  ({o.note})" if o.note else ""
        print(f"[{status:9}] {o.case.id}  {o.seconds:.1f}s{note}", flush=True)

    outcomes = run_suite(cases, peer, sky, args.jobs, digits, show)
    failed = [o for o in outcomes if not o.identical]
    for o in failed:
        lines = o.diff.splitlines(keepends=True)
        if not args.verbose and len(lines) > args.max_diff_lines:
            lines = lines[: args.max_diff_lines] + [
                f"... {len(lines) - args.max_diff_lines} more lines (-v for all)\n"
            ]
        print(f"\n=== {o.case.id} ({o.case.source}) differs:\n" + "".join(lines), end="")
    if args.report:
        args.report.write_text(
            json.dumps(
                [
                    {
                        "id": o.case.id,
                        "identical": o.identical,
                        "reference": o.reference,
                        "diff": o.diff,
                        "note": o.note,
                        "seconds": round(o.seconds, 2),
                        "timing": o.timing,
                        "covers": list(o.case.covers),
                    }
                    for o in outcomes
                ],
                indent=1,
            )
        )
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    passed = len(outcomes) - len(failed)
    pct = 100.0 * passed / len(outcomes)
    print(f"\ncompat: {pct:.1f}% identical in {time.monotonic() - t0:.0f}s", flush=True)
    code = 0
    if args.ratchet or args.update_ratchet:
        code = ratchet(passed, update=args.update_ratchet, selected=bool(args.select))
    print(f"{passed} passed, {len(failed)} failed", flush=True)
    return code


def ratchet(passed: int, update: bool, selected: bool) -> int:
    floor = int(harness.RATCHET_FILE.read_text().split()[0])
    if selected:
        print("ratchet: not checked (a selection of cases ran)")
        return 0
    if passed < floor:
        print(f"ratchet: FAILED: {passed} identical cases, the ratchet is {floor}")
        return 1
    if update and passed > floor:
        harness.RATCHET_FILE.write_text(f"{passed}\n")
        print(f"ratchet: raised from {floor} to {passed}")
    elif passed > floor:
        print(f"ratchet: {passed} identical >= {floor}; raise it with --update-ratchet")
    else:
        print(f"ratchet: {passed} identical >= {floor}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
