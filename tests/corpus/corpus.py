#!/usr/bin/env python3
"""The corpus harness: every public script of tests/corpus/scripts (INDEX.md names each
one's source) run side by side through real Slurm (the peer) and slurmsky's local backend,
with the differential machinery of tests/compat (same sides, same normalisation, stored
answers when the peer is down). Three comparisons per script:

  verdict  `sbatch --test-only` of the script as written, then of its sited form (below):
           accepted or refused alike (exit status), and the same words;
  held     `sbatch --hold` of the sited form, then `scontrol show job`: the held job record
           field by field (after normalisation), then scancel;
  run      the sited header with a probe body: the batch script's and an srun step's
           SLURM_* environment, written where the script's --output/--error say; every file
           the job wrote is compared.

The *sited* form maps what only the script's own site has onto the peer, rule by rule (SITE
below): its partition names become the peer's (gpu when the script asks for GPUs, else
debug); accounts, QOS, reservations, node names, features and other clusters are dropped;
GPU types are dropped (the peer's GPUs have none); arrays are cut to their first three
indices (time). slurmsky is configured as the peer's site (the compat harness's
PEER_SHAPE_CONFIG: nodes of 4 CPUs and 4000 MB, four in debug, two with two GPUs each in gpu,
DefMemPerCPU=100, MaxArraySize=10001).

    python tests/corpus/corpus.py               # live when the peer is up, else stored
    python tests/corpus/corpus.py --regenerate  # store the peer's answers (peer up)
    python tests/corpus/corpus.py --ratchet     # exit 1 below tests/corpus/RATCHET
    python tests/corpus/corpus.py -k mila -v    # some scripts, full diffs
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "compat"))
import harness as compat  # noqa: E402

SCRIPTS = HERE / "scripts"
EXPECTED = HERE / "expected"
RATCHET = HERE / "RATCHET"
KINDS = ("verdict", "held", "run")
# Options whose values name things of the script's own site: (long, short) -> what the sited
# form does with them.
DROPPED = {
    ("account", "A"),
    ("qos", "q"),
    ("reservation", None),
    ("nodelist", "w"),
    ("exclude", "x"),
    ("constraint", "C"),
    ("clusters", "M"),
    ("mail-user", None),
}
GPU_OPTIONS = ("gres", "gpus", "gpus-per-node", "gpus-per-task", "gpus-per-socket")
ARGS = {"partition": "p", "array": "a"} | {long: short for long, short in DROPPED}
ARGS.update(dict.fromkeys(GPU_OPTIONS), gpus="G")
SHORT_ARG = {short: long for long, short in ARGS.items() if short}


def _words(line: str) -> list[str]:
    """The words of one #SBATCH line, as sbatch reads them (a ` #` starts a comment)."""
    text = line.split("#SBATCH", 1)[1]
    text = re.split(r"\s#", text, maxsplit=1)[0]
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def _options(words: list[str]):
    """-> [(long or None, value or None, written words)] of one line's words."""
    out, i = [], 0
    while i < len(words):
        w = words[i]
        long = value = None
        taken = [w]
        if w.startswith("--"):
            name, eq, val = w[2:].partition("=")
            match = [n for n in ARGS if n == name] or [n for n in ARGS if n.startswith(name)]
            if len(match) == 1:
                long = match[0]
                if eq:
                    value = val
                elif i + 1 < len(words):
                    value, taken = words[i + 1], [w, words[i + 1]]
                    i += 1
        elif w.startswith("-") and len(w) >= 2 and w[1] in SHORT_ARG:
            long = SHORT_ARG[w[1]]
            if len(w) > 2:
                value = w[2:]
            elif i + 1 < len(words):
                value, taken = words[i + 1], [w, words[i + 1]]
                i += 1
        out.append((long, value, taken))
        i += 1
    return out


def _wants_gpus(lines: list[str]) -> bool:
    for line in lines:
        for long, value, _ in _options(_words(line)):
            if long in GPU_OPTIONS and value and (long != "gres" or "gpu" in value):
                return True
    return False


def _array(spec: str) -> str:
    """An array spec cut to its first three indices (the throttle kept)."""
    spec, pct, throttle = spec.partition("%")
    if spec.startswith("[") and spec.endswith("]"):  # --array=[0-4], as Slurm reads it
        return "[" + _array(spec[1:-1]) + "]" + pct + throttle
    first = spec.split(",")[0]
    m = re.fullmatch(r"(\d+)-(\d+)(?::(\d+))?", first)
    if m:
        a, b, step = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
        last = min(b, a + 2 * step)
        first = f"{a}-{last}" + (f":{step}" if m.group(3) else "")
    elif "," in spec:
        first = ",".join(spec.split(",")[:3])
    return first + pct + throttle


def sited(text: str) -> str:
    """The script with its site's names mapped onto the peer's (see the module's doc)."""
    lines = text.splitlines()
    header = [line for line in lines if line.startswith("#SBATCH")]
    partition = "gpu" if _wants_gpus(header) else "debug"
    out = []
    if partition == "gpu" and not any(
        long == "partition" for line in header for long, _, _ in _options(_words(line))
    ):
        lines = lines[:1] + ["#SBATCH --partition=gpu"] + lines[1:]
    for line in lines:
        if not line.startswith("#SBATCH"):
            out.append(line)
            continue
        words = []
        for long, value, taken in _options(_words(line)):
            if long == "partition":
                words.append(f"--partition={partition}")
            elif long in {lg for lg, _ in DROPPED}:
                continue
            elif long in GPU_OPTIONS and value is not None:
                words.append(f"--{long}={_untyped(value)}")
            elif long == "array" and value is not None:
                words.append(f"--array={_array(value)}")
            else:
                words.extend(taken)
        if words:
            out.append("#SBATCH " + " ".join(shlex.quote(w) for w in words))
    return "\n".join(out) + "\n"


def _untyped(value: str) -> str:
    """gpu:a100:4 -> gpu:4, a100:1 -> 1: the peer's GPUs have no type."""
    items = []
    for item in value.split(","):
        parts = item.split(":")
        if parts[0] == "gpu" and len(parts) == 3:
            parts = [parts[0], parts[2]]
        elif len(parts) == 2 and not parts[0] == "gpu" and parts[1].isdigit():
            parts = [parts[1]]
        items.append(":".join(parts))
    return ",".join(items)


PROBE = """
echo "== batch"
env | grep -E '^SLURM' | sort
echo "== step"
srun -l bash -c 'env | grep -E "^SLURM" | sort' | sort -s -t: -k1,1n
"""
LIST_FILES = 'for f in $(find . -type f ! -name \'*.sh\' | sort); do echo "== $f"; cat "$f"; done'
SITE_RULES = [
    {
        "re": r"AllocNode:Sid=\S+",
        "to": "AllocNode:Sid=<host>:<sid>",
        "why": "the submitting host's name and session id",
    },
    {
        "re": r"(?<=== \./)vm(?=\.)",
        "to": "node1",
        "why": "%N is the node's host name: the peer's four nodes all run on host vm",
        "side": "peer",
    },
    {
        "re": r"(?<=== \./)127\.0\.0\.(\d+)(?=\.)",
        "to": r"node\1",
        "why": "%N is the node's name: slurmsky's local nodes are named by address",
        "side": "slurmsky",
    },
    {
        "re": r"(?<=[._-])\d{4,}(?=[._-])",
        "to": "<id>",
        "why": "job ids inside file names (%j): the harness numbers ids not preceded by '.'",
    },
    {
        "re": r"^sbatch: warning: .* ignored by slurmsky: .*\n",
        "to": "",
        "why": "slurmsky's notice for an option it accepts without effect (README matrix)",
        "side": "slurmsky",
    },
    {
        "re": r"Priority=\d+",
        "to": "Priority=<prio>",
        "why": "priorities are the site's scheduling policy",
    },
    {
        "re": r"Account=\S* QOS=\S*",
        "to": "Account=<acct> QOS=<qos>",
        "why": "site accounting (the peer's slurmdbd assigns research/normal)",
    },
]


def cases(select: list[str] | None = None) -> list[compat.Case]:
    out = []
    for path in sorted(SCRIPTS.glob("*.sh")):
        name = path.stem
        if select and not any(s in name for s in select):
            continue
        text = path.read_text()
        site = sited(text)
        header = [line for line in site.splitlines() if not line.startswith("# corpus")]
        probe = "\n".join(header) + PROBE
        rules = tuple(compat.Rule(r["re"], r["to"], r["why"], r.get("side")) for r in SITE_RULES)
        steps = {
            "verdict": (
                "sbatch --test-only orig.sh",
                "sbatch --test-only job.sh",
            ),
            "held": (
                "sbatch --hold --parsable job.sh",
                'test -z "$JOB1" || scontrol show job "$JOB1"',
                'test -z "$JOB1" || scancel "$JOB1"',
            ),
            "run": ("sbatch --parsable job.sh", "wait", LIST_FILES),
        }
        files = {"verdict": {"orig.sh": text, "job.sh": site}, "held": {"job.sh": site}}
        files["run"] = {"job.sh": probe}
        for kind in KINDS:
            out.append(
                compat.Case(
                    id=f"{name}-{kind}",
                    covers=(),
                    steps=tuple(compat._step(s, name) for s in steps[kind]),
                    files=files[kind],
                    rules=rules,
                    timeout=120.0,
                    slow=kind == "run",
                    peer_shape=True,
                    source=path.name,
                )
            )
    return out


def _exits(text: str) -> list[str]:
    return re.findall(r"^--- exit (.*)$", text, re.M)


def score(outcomes) -> dict:
    """Per kind: identical / total; for verdicts also the accept/refuse agreement."""
    result: dict = {}
    for kind in KINDS:
        mine = [o for o in outcomes if o.case.id.endswith("-" + kind)]
        result[kind] = (sum(o.identical for o in mine), len(mine))
    verdicts = [o for o in outcomes if o.case.id.endswith("-verdict")]
    agree = [
        o
        for o in verdicts
        if [e == "0" for e in _exits(o.peer_text)] == [e == "0" for e in _exits(o.sky_text)]
    ]
    result["agree"] = (len(agree), len(verdicts))
    held = [o for o in outcomes if o.case.id.endswith("-held")]
    result["held_accepted"] = sum(_exits(o.peer_text)[:1] == ["0"] for o in held)
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--stored", action="store_true", help="never use the peer")
    mode.add_argument("--regenerate", action="store_true", help="store the peer's answers")
    ap.add_argument("-k", dest="select", action="append", default=[])
    ap.add_argument("-j", "--jobs", type=int, default=8)
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--ratchet", action="store_true")
    ap.add_argument("--update-ratchet", action="store_true")
    args = ap.parse_args(argv)
    chosen = cases(args.select)
    peer_up = not args.stored and compat.PeerSide.is_up()
    if args.regenerate and not peer_up:
        print("the peer is not up", file=sys.stderr)
        return 2
    root = compat.new_root("sscorpus-")
    peer = compat.PeerSide(root) if peer_up else None
    digits = compat.id_digits(peer.raise_ids_to(1000)) if peer else 4
    t0 = time.monotonic()
    if args.regenerate:
        assert peer is not None
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for case, res in zip(chosen, pool.map(lambda c: peer.run_case(c, digits), chosen)):
                compat.write_expected(case, compat.render(case, res), digits, EXPECTED)
        shutil.rmtree(root, ignore_errors=True)
        print(f"stored {len(chosen)} answers in {time.monotonic() - t0:.0f}s")
        return 0
    sky = compat.SkySide(root)
    print(
        f"corpus: {len(chosen) // len(KINDS)} scripts, reference: "
        f"{'live real Slurm' if peer else 'stored answers (tests/corpus/expected)'}",
        flush=True,
    )
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        outcomes = list(pool.map(lambda c: compat.run_one(c, peer, sky, digits, EXPECTED), chosen))
    for o in outcomes:
        if not o.identical:
            lines = o.diff.splitlines(keepends=True)
            if not args.verbose:
                lines = lines[:30]
            print(f"\n=== {o.case.id} differs:\n" + "".join(lines), end="")
    shutil.rmtree(root, ignore_errors=True)
    s = score(outcomes)
    summary = (
        f"accept/refuse agree {s['agree'][0]}/{s['agree'][1]}; verdict text identical "
        f"{s['verdict'][0]}/{s['verdict'][1]}; held records identical {s['held'][0]}/"
        f"{s['held'][1]} (real Slurm accepted {s['held_accepted']}); real runs identical "
        f"{s['run'][0]}/{s['run'][1]}"
    )
    print(f"\ncorpus: {summary} ({time.monotonic() - t0:.0f}s)")
    total = sum(o.identical for o in outcomes)
    if (args.ratchet or args.update_ratchet) and not args.select:
        floor = int(RATCHET.read_text().split()[0])
        if total < floor:
            print(f"ratchet: FAILED: {total} identical, the ratchet is {floor}")
            return 1
        if args.update_ratchet and total > floor:
            RATCHET.write_text(f"{total}\n")
            print(f"ratchet: raised from {floor} to {total}")
    print(f"{total} passed, {len(outcomes) - total} failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
