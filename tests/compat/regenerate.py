#!/usr/bin/env python3
"""Run the corpus on the real Slurm peer and store its normalised answers in
tests/compat/expected/<case>.txt: what the suite compares slurmsky with when the peer is down.

    bash shared/tools/slurm-peer-up.sh         # as root
    python tests/compat/regenerate.py           # every case
    python tests/compat/regenerate.py -k sacct  # some cases
    python tests/compat/regenerate.py --check   # run twice; report cases whose answer varies

A case whose answer varies from run to run on real Slurm is a badly written case (it depends
on timing): --check finds them, and the stored answer is not written for them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", dest="select", action="append", default=[])
    ap.add_argument("-j", "--jobs", type=int, default=16)
    ap.add_argument("--check", action="store_true", help="run twice, store only stable answers")
    args = ap.parse_args(argv)
    if not harness.PeerSide.is_up():
        print("the peer is not up: bash shared/tools/slurm-peer-up.sh", file=sys.stderr)
        return 2
    cases = harness.load_cases()
    if args.select:
        cases = [c for c in cases if any(p in c.id for p in args.select)]
    t0 = time.monotonic()
    runs = 2 if args.check else 1
    texts: dict[str, list[str]] = {c.id: [] for c in cases}
    digits = 4
    for _ in range(runs):
        root = harness.new_root("sscompat-regen-")
        peer = harness.PeerSide(root)
        digits = harness.id_digits(peer.raise_ids_to(1000))

        def one(case, peer=peer):
            return case.id, harness.render(case, peer.run_case(case, digits))

        shared = sorted((c for c in cases if not c.exclusive), key=lambda c: not c.slow)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for cid, text in pool.map(one, shared):
                texts[cid].append(text)
        for case in cases:
            if case.exclusive:
                cid, text = one(case)
                texts[cid].append(text)
        shutil.rmtree(root, ignore_errors=True)
    unstable = [c.id for c in cases if len(set(texts[c.id])) > 1]
    for case in cases:
        if case.id in unstable:
            a, b = texts[case.id][:2]
            print(f"UNSTABLE {case.id}:\n" + harness.compare(case, a, b, "run 1")[1])
            continue
        harness.write_expected(case, texts[case.id][0], digits)
        timed_out = "TIMED OUT" in texts[case.id][0] or "timed out after" in texts[case.id][0]
        print(
            f"stored {case.id}" + ("  (WARNING: a wait or command timed out)" if timed_out else "")
        )
    print(
        f"{len(cases) - len(unstable)} stored, {len(unstable)} unstable "
        f"in {time.monotonic() - t0:.0f}s"
    )
    return 1 if unstable else 0


if __name__ == "__main__":
    sys.exit(main())
