"""Listing latency at one queue size: squeue, sacct, their -j forms and scancel, beside
`python -c pass`, interleaved in one loop (so the machine's load weighs on all alike).

    python bench/listing.py [--jobs 10000] [--layout held|arrays] [--runs 11]
                            [--code CHECKOUT ...] [--keep DIR] [--state URL ...] [--kept]

Each `--code` is a checkout whose bin/ shims are timed (default: this one), so an old and a
new tree can be compared in the same run. The state is built as bench/run.py builds it
(held `--wrap true` jobs through sbatch's own store); `--layout arrays` puts most jobs in
four held 2500-element arrays (`--array=0-2499%4`), which squeue collapses to one line each.
With `--kept` the loop is a polling one: no scancel, stdout a file, so a long listing is
the answer kept from the call before (listing_cache). Each `--state` is an engine the same
commands are timed on, in the same loop: `sqlite` (the default) or an empty PostgreSQL
database's URL (the state is made there; with --keep, the state directory holds the ids of
that one).
Nothing here is a test: it prints medians (ms) and ratios to `python -c pass`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def populate(home: str, count: int, layout: str, cwd: str) -> list[int]:
    """`count` jobs in a fresh state; the ids of the single jobs (or array elements)."""
    os.environ["SLURMSKY_HOME"] = home
    from slurmsky.config import load_config
    from slurmsky.core.submit import store
    from slurmsky.parse.request import build_batch_request, parse_command_line

    cfg = load_config()

    def request(*extra):
        argv = ["--hold", "-J", "bench", *extra, "--wrap", "true"]
        return build_batch_request(
            parse_command_line("sbatch", argv), dict(os.environ), cwd, lambda: b""
        )

    ids = []
    if layout == "arrays":
        size = count // 4
        for _ in range(4):
            first = store(request(f"--array=0-{size - 1}%4"), cfg, batch=True)
            ids.extend(range(first, first + size))
        count -= 4 * size
    single = request()
    for _ in range(count):
        ids.append(store(single, cfg, batch=True))
    return ids


def timed_ms(argv: list[str], env: dict, cwd: str, kept: bool = False) -> float:
    """The call's wall time; with `kept` its stdout is a file (where answers are kept)."""
    with open(os.path.join(cwd, "out"), "w") if kept else open(os.devnull, "w") as out:
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.DEVNULL, check=False)
        return (time.perf_counter() - t0) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=10000)
    ap.add_argument("--layout", choices=("held", "arrays"), default="held")
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--code", action="append", default=[])
    ap.add_argument("--keep", help="reuse (or create) the state in this directory")
    ap.add_argument("--only", help="comma-separated command labels to time")
    ap.add_argument("--state", action="append", default=[], help="sqlite or a PostgreSQL URL")
    ap.add_argument(
        "--kept", action="store_true", help="a polling loop's calls: no scancel, stdout a file"
    )
    args = ap.parse_args()
    codes = args.code or [str(ROOT)]
    tmp = tempfile.mkdtemp(prefix="slurmsky-listing-")
    runs = [_prepare(args, tmp, where) for where in args.state or ["sqlite"]]
    times: dict = {("python -c pass", "", ""): []}
    for _ in range(args.runs):
        pass_env = runs[0][1]
        times[("python -c pass", "", "")].append(
            timed_ms([sys.executable, "-c", "pass"], pass_env, tmp)
        )
        for where, env, cases, victims in runs:
            for label, extra in cases:
                for code in codes:
                    argv = [sys.executable, str(Path(code, "bin", label.split()[0]))]
                    argv += extra if extra is not None else [str(next(victims))]
                    ms = timed_ms(argv, env, tmp, args.kept)
                    times.setdefault((label, code, where), []).append(ms)
    for where, env, cases, victims in runs:
        subprocess.run(
            [sys.executable, str(Path(codes[0], "bin", "slurmsky")), "agent", "stop"],
            env=env,
            capture_output=True,
            check=False,
        )
    floor = statistics.median(times[("python -c pass", "", "")])
    print(f"{args.jobs} jobs ({args.layout}), median of {args.runs}; python -c pass {floor:.1f} ms")
    for (label, code, where), values in times.items():
        ms = statistics.median(values)
        engine = where.split("@")[-1] if where else ""
        print(f"{label:16} {engine:28} {code:24} {ms:7.1f} ms {ms / floor:5.1f}x")


def _prepare(args, tmp: str, where: str):
    """The state on engine `where`, populated: (where, the commands' env, the cases, the
    ids scancel takes)."""
    home = args.keep if args.keep and where == "sqlite" else tempfile.mkdtemp(dir=tmp)
    os.environ.pop("SLURMSKY_STATE", None)
    if where != "sqlite":
        os.environ["SLURMSKY_STATE"] = where
    ids_file = Path(home, "bench-ids")
    if ids_file.exists():
        ids = [int(x) for x in ids_file.read_text().split()]
    else:
        config = Path(home, "config.yaml")
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(f"max_array_size: {args.jobs + 1}\n")
        os.environ["SLURMSKY_CONFIG"] = str(config)
        t0 = time.time()
        ids = populate(home, args.jobs, args.layout, tmp)
        ids_file.write_text(" ".join(map(str, ids)))
        Path(home, "bench-layout").write_text(args.layout)
        print(f"populated {len(ids)} jobs in {time.time() - t0:.1f} s ({where})", file=sys.stderr)
    env = dict(os.environ, SLURMSKY_HOME=home, SLURMSKY_CONFIG=str(Path(home, "config.yaml")))
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # time the commands as installed: compiled once
    probe = str(ids[len(ids) // 2])
    cases = [
        ("squeue", []),
        ("squeue -j", ["-j", probe]),
        ("sacct", []),
        ("sacct -j", ["-j", probe]),
        ("scancel", None),
    ]
    if args.kept:  # the queue stays as it is: squeue's long listing is a kept answer
        cases = cases[:-1]
    if args.only:
        wanted = args.only.split(",")
        cases = [c for c in cases if c[0] in wanted]
    victims = iter(ids[: len(ids) // 2 - 1][::-1])
    return where, env, cases, victims


if __name__ == "__main__":
    main()
