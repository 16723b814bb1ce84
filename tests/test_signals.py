"""Ctrl-C, SIGTERM and SIGHUP as Slurm's commands take them: no Python traceback ever;
`sbatch` stored and printed, or neither; `srun`'s two-Ctrl-C protocol with real srun's
messages (captured from the live peer: tests/fixtures/slurm-captures/srun-sigint-*.txt)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

from conftest import BIN

TRIALS = 100
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _sbatch(cluster) -> subprocess.Popen:
    return subprocess.Popen(  # run as a user's shell does: through its #! line
        [str(BIN / "sbatch"), "--hold", "--wrap", "true"],
        cwd=cluster.cwd,
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _trial(cluster, rng, span) -> tuple[int, str, str, float]:
    """One sbatch, signalled after a random delay: (returncode, stdout, stderr, delay)."""
    proc = _sbatch(cluster)
    delay = rng.uniform(0, span)
    time.sleep(delay)
    proc.send_signal(rng.choice(SIGNALS))
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err, delay


def test_sbatch_is_atomic_under_signals(cluster):
    """100 sbatch, each sent SIGINT, SIGTERM or SIGHUP after a random delay up to 1.2 times
    what an undisturbed sbatch takes: no traceback, and the jobs stored are exactly the ids
    printed. A signal before the submission ends sbatch by that signal with nothing stored;
    one while it stores is held until the id is printed."""
    seed = int(os.environ.get("SLURMSKY_SIGNAL_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    took = []
    for _ in range(3):
        start = time.monotonic()
        assert _sbatch(cluster).communicate(timeout=60)[0].startswith("Submitted")
        took.append(time.monotonic() - start)
    span = 1.2 * sorted(took)[1]
    printed, killed, tracebacks = [], 0, []
    for _ in range(TRIALS):
        code, out, err, delay = _trial(cluster, rng, span)
        if "Traceback" in err or "KeyboardInterrupt" in err:
            tracebacks.append((delay, err))
        if out:
            assert out.startswith("Submitted batch job "), (seed, out)
            printed.append(int(out.split()[-1]))
        if code < 0:
            killed += 1
            assert -code in SIGNALS and err == "", (seed, code, err)
        else:
            assert code == 0 and out, (seed, code, out, err)
    stored = [row[0] for row in cluster.jobs()][3:]
    print(f"seed {seed}: sbatch {span / 1.2:.2f} s; {len(printed)} printed, {killed} ended by it")
    assert tracebacks == [], (seed, tracebacks[:3])
    assert stored == sorted(printed), seed
    assert 0 < len(printed) < TRIALS, seed  # both outcomes were tried
