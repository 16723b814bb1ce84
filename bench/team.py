"""A team's queue on PostgreSQL (issue 49): `squeue` of a 10-member queue of 10 000 jobs, as
the administrator and as a member (under row-level security), and the hand-off in a full
partition: the time from one member's job ending to another member's pending job starting,
each run by its own member's agent (local backend), beside the same on the real Slurm peer.

    python bench/team.py --postgres postgresql://slurmsky@127.0.0.1:PORT/ [--jobs 10000]
                         [--runs 11] [--handoffs 5] [--peer]

Runs as root, with the member `peeruser` (the peer's) running this run's packages through
the system python3 (PYTHONPATH). Nothing here is a test.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import site
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "bin"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from bench.listing import populate  # noqa: E402

MEMBER = "peeruser"
ONE_NODE = "partitions:\n  local:\n    nodes: 1\n    cpus_per_node: 1\n"


class Side:
    """One user's commands on the team's database: root (the administrator) or the member."""

    def __init__(self, database: str, user: str | None, config: str):
        self.user = user
        self.top = tempfile.mkdtemp(prefix="slurmsky-team-bench-")
        self.env = {
            "PATH": "/usr/bin:/bin",
            "HOME": self.top,
            "SLURMSKY_HOME": os.path.join(self.top, "state"),
            "SLURMSKY_CONFIG": os.path.join(self.top, "config.yaml"),
            "SLURMSKY_STATE": database,
        }
        Path(self.env["SLURMSKY_CONFIG"]).write_text(config)
        self.python = sys.executable
        if user:
            entry = pwd.getpwnam(user)
            self.uid = entry.pw_uid
            for path in (self.top, self.env["SLURMSKY_CONFIG"]):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            netloc, _, db = database.partition("://")[2].partition("/")
            self.env["SLURMSKY_STATE"] = f"postgresql://{user}@{netloc.partition('@')[2]}/{db}"
            self.env["PYTHONPATH"] = site.getsitepackages()[0]
            self.python = "/usr/bin/python3"

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.python, str(BIN / argv[0]), *argv[1:]],
            cwd=self.top,
            env=self.env,
            user=self.uid if self.user else None,
            capture_output=True,
            text=True,
            check=check,
            timeout=600,
        )

    def ms(self, *argv: str) -> float:
        t0 = time.perf_counter()
        self.run(*argv)
        return (time.perf_counter() - t0) * 1000

    def close(self) -> None:
        self.run("slurmsky", "agent", "stop", check=False)
        shutil.rmtree(self.top, ignore_errors=True)


def _pass_ms(runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _multifactor_ms(database: str, runs: int) -> None:
    """What priority/multifactor adds to an agent's pass over the jobs, pending now (not
    held): reading every pending job at once, this period's fair shares (every run's
    usage), each job's priority and the order."""
    from slurmsky.config import Config
    from slurmsky.core import fairshare, state
    from slurmsky.core.state.engine import connect_postgres

    conn = connect_postgres(database)
    conn.execute("UPDATE jobs SET held = NULL, reason = 'Resources'")
    conn.execute(
        "UPDATE jobs SET start_time = submit_time - 600, end_time = submit_time "
        "WHERE job_id % 3 = 0"
    )  # fmt: skip  (a third have run: usage to sum)
    settings = fairshare.Settings(Config(path=""))
    times = {"read every pending job": [], "fair shares (every run)": [], "priorities, order": []}
    for _ in range(runs):
        t0 = time.perf_counter()
        jobs = state.pending_jobs(conn, (), 2**62)
        t1 = time.perf_counter()
        factors = fairshare.Factors(conn, settings, time.time())
        t2 = time.perf_counter()
        ranks = {j.job_id: factors.of(j)[0] for j in jobs}
        sorted(jobs, key=lambda j: (-ranks[j.job_id], state.pass_position(j)))
        t3 = time.perf_counter()
        for key, took in zip(times, (t1 - t0, t2 - t1, t3 - t2)):
            times[key].append(took * 1000)
    print(f"multifactor over {len(jobs)} pending jobs (a third of them run before):")
    for key, values in times.items():
        print(f"  {key:28} median {statistics.median(values):7.1f} ms")
    conn.execute("UPDATE jobs SET held = 'user', reason = 'JobHeldUser', start_time = NULL, "
                 "end_time = NULL")  # fmt: skip
    conn.close()


def squeue_of_a_team(server: str, jobs: int, runs: int) -> None:
    import pgserver

    from slurmsky.core.state.engine import connect_postgres

    database = pgserver.database(server)
    admin = Side(database, None, "kill_wait: 1\n")
    admin.run("sacctmgr", "-i", "add", "account", "team")
    names = [MEMBER, *(f"member{i}" for i in range(9))]
    admin.run("sacctmgr", "-i", "add", "user", ",".join(names), "account=team")
    os.environ.update(SLURMSKY_STATE=database, SLURMSKY_CONFIG=admin.env["SLURMSKY_CONFIG"])
    ids = populate(admin.env["SLURMSKY_HOME"], jobs, "singles", admin.top)  # sbatch's store
    conn = connect_postgres(database)  # a tenth of them each member's
    members = ", ".join(f"'{n}'" for n in names)
    conn.execute(f'UPDATE jobs SET "user" = (ARRAY[{members}])[1 + (job_id % 10)]')
    conn.close()
    _multifactor_ms(database, runs)
    member = Side(database, MEMBER, "kill_wait: 1\n")
    print(f"{jobs} held jobs of 10 members; python -c pass {_pass_ms(runs):.1f} ms")
    for label, side in (("administrator", admin), ("member (row-level security)", member)):
        for argv in (("squeue",), ("squeue", "--me"), ("squeue", "-j", str(ids[len(ids) // 2]))):
            times = []
            for i in range(runs):
                if i % 2 == 0:  # a change between: no kept answer (listing_cache)
                    admin.run("scontrol", "update", f"jobid={ids[0]}", f"comment=c{i}")
                times.append(side.ms(*argv))
            print(f"  {label:28} {' '.join(argv):14} median {statistics.median(times):7.1f} ms")
    member.close()
    admin.close()
    pgserver.drop(server, database)


def handoff_local(server: str, count: int) -> list[float]:
    """Seconds from root's job ending to the member's pending job starting, one 1-CPU node."""
    import pgserver

    database = pgserver.database(server)
    admin = Side(database, None, "kill_wait: 1\n" + ONE_NODE)
    admin.run("sacctmgr", "-i", "add", "account", "team")
    admin.run("sacctmgr", "-i", "add", "user", f"root,{MEMBER}", "account=team")
    member = Side(database, MEMBER, "kill_wait: 1\n" + ONE_NODE)
    from slurmsky.core.state.engine import connect_postgres

    gaps = []
    for _ in range(count):
        first = int(admin.run("sbatch", "--parsable", "--wrap", "sleep 3").stdout)
        time.sleep(1)
        second = int(member.run("sbatch", "--parsable", "--wrap", "true").stdout)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            conn = connect_postgres(database)
            rows = dict(
                conn.execute(
                    "SELECT job_id, ARRAY[end_time, start_time] FROM jobs WHERE job_id IN (%s, %s)"
                    % (first, second)
                ).fetchall()
            )
            conn.close()
            if rows[second][1] is not None and rows[first][0] is not None:
                gaps.append(rows[second][1] - rows[first][0])
                break
            time.sleep(0.2)
        time.sleep(1)
    member.close()
    admin.close()
    pgserver.drop(server, database)
    return gaps


def handoff_peer(count: int) -> list[float]:
    """The same on the real Slurm peer: root's job on node1 (exclusive), then peeruser's."""
    import datetime

    gaps = []
    work = tempfile.mkdtemp(prefix="slurm-team-bench-")
    os.chmod(work, 0o777)

    def sbatch(user: str | None, *args: str) -> str:
        argv = ["/usr/bin/sbatch", "--parsable", "-w", "node1", "--exclusive", *args]
        if user:
            argv = ["runuser", "-u", user, "--", *argv]
        return subprocess.run(argv, cwd=work, capture_output=True, text=True, check=True).stdout

    for _ in range(count):
        first = sbatch(None, "-o", "/dev/null", "--wrap", "sleep 3").strip()
        time.sleep(1)
        second = sbatch(MEMBER, "-o", "/dev/null", "--wrap", "true").strip()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            out = subprocess.run(
                ["/usr/bin/sacct", "-n", "-X", "-P", "-j", f"{first},{second}", "-o",
                 "JobID,Start,End,State"],
                capture_output=True, text=True,
            ).stdout.split()  # fmt: skip
            rows = {r.split("|")[0]: r.split("|")[1:] for r in out}
            if rows.get(second, ["", "", "PENDING"])[2] == "COMPLETED":
                iso = datetime.datetime.fromisoformat
                gaps.append((iso(rows[second][0]) - iso(rows[first][1])).total_seconds())
                break
            time.sleep(0.5)
    shutil.rmtree(work, ignore_errors=True)
    return gaps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--postgres", required=True, help="a PostgreSQL server URL (ends in /)")
    ap.add_argument("--jobs", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--handoffs", type=int, default=5)
    ap.add_argument("--peer", action="store_true", help="the hand-off on the Slurm peer too")
    args = ap.parse_args()
    squeue_of_a_team(args.postgres, args.jobs, args.runs)
    gaps = handoff_local(args.postgres, args.handoffs)
    print(f"hand-off, local backend (s): {' '.join(f'{g:.2f}' for g in gaps)}; "
          f"median {statistics.median(gaps):.2f}")  # fmt: skip
    if args.peer:
        gaps = handoff_peer(args.handoffs)
        print(
            f"hand-off, Slurm peer (s, sacct's whole seconds): {' '.join(f'{g:.0f}' for g in gaps)}"
        )


if __name__ == "__main__":
    main()
