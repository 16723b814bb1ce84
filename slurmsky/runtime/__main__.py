"""Entry points of the node runtime.

    python3 -m slurmsky.runtime node --spec SPEC.json [--result RESULT.json] [--rundir DIR]
        Every node of the job runs this; SKYPILOT_NODE_RANK says which node it is (0 runs
        the batch script and writes RESULT.json, the others run a step agent). The job
        secret arrives in SLURMSKY_STEP_SECRET. SIGTERM to node 0 cancels the job.
        Node 0 exits 0 when the job COMPLETED, else with the batch script's exit code (or
        128+signal, or 1); an agent exits 0 when node 0 ended the job, 1 otherwise.
    python3 -m slurmsky.runtime signal --rundir DIR --signal SIG [--batch|--steps|--full|--job|--step N[:UID]]
        scancel --signal for a running job: SIG (number or name) to its steps (default),
        its batch shell only (--batch), or both (--full); --job: every process of the job
        (scontrol suspend, resume); --step N: that step alone (scancel J.N; SIGKILL ends it as
        Slurm cancels a step, with its CANCELLED line; :UID, who cancelled it, for sacct).
        DIR is node 0's --rundir.

Inside the job, ``srun`` and ``scontrol`` are small wrappers in the node's rundir/bin (see
rundir.py) that run srun.main / scontrol.main directly.
"""

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time

from . import channel, het, rundir
from .agent import Agent
from .controller import Controller
from .launch import undo_locale_coercion
from .spec import SECRET_VAR, Job, SpecError, load, on_node


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python3 -m slurmsky.runtime")
    commands = parser.add_subparsers(dest="command", required=True)
    node = commands.add_parser("node", help="run this node's part of the job")
    node.add_argument("--spec", required=True)
    node.add_argument("--result")
    node.add_argument("--rundir")
    sig = commands.add_parser("signal", help="deliver a signal as scancel --signal does")
    sig.add_argument("--rundir", required=True)
    sig.add_argument("--signal", required=True, type=_signum)
    target = sig.add_mutually_exclusive_group()
    for flag in ("batch", "steps", "full", "job"):
        target.add_argument("--" + flag, dest="target", action="store_const", const=flag)
    target.add_argument("--step")  # S, or S:UID for a step cancelled by UID
    args = parser.parse_args(argv)
    if args.command == "node":
        return run_node(args.spec, args.result, args.rundir)
    if args.step is not None:
        return send_signal(args.rundir, args.signal, "step:" + args.step)
    return send_signal(args.rundir, args.signal, args.target or "steps")


def _signum(text):
    if text.isdigit():
        return int(text)
    name = text.upper() if text.upper().startswith("SIG") else "SIG" + text.upper()
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise argparse.ArgumentTypeError("invalid signal: %s" % text) from None


def run_node(spec_path, result_path, run_dir):
    undo_locale_coercion()
    environ = dict(os.environ)
    secret = environ.pop(SECRET_VAR, None)
    os.environ.pop(SECRET_VAR, None)  # nothing started from here may inherit it
    rank = int(environ.get("SKYPILOT_NODE_RANK") or 0)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%%(asctime)s slurmsky-runtime[node%d]: %%(message)s" % rank,
    )
    result_path = os.path.abspath(result_path) if result_path else None
    try:
        spec = load(spec_path)
        # a job group's task: its nodes' ranks and IPs among the whole job's (het.py)
        environ = het.join_group(spec, environ, run_dir, spec["startup_timeout"])
        rank = int(environ.get("SKYPILOT_NODE_RANK") or 0)
        job = Job(on_node(spec, environ, run_dir, rank), environ)
        if not secret and job.num_nodes > 1:
            raise SpecError("%s is not set" % SECRET_VAR)
    except (OSError, ValueError, KeyError, SpecError) as e:
        return _failed(rank, result_path, "cannot run the job: %s" % e)
    secret = secret or os.urandom(32).hex()  # a lone node needs no shared secret
    own_dir = run_dir is None
    run_dir = run_dir or tempfile.mkdtemp(prefix="slurmsky-%d-" % job.job_id)
    try:
        if job.rank == 0:
            return Controller(job, secret, run_dir, result_path, environ).run()
        return Agent(job, secret, run_dir, environ).run()
    except (OSError, channel.ChannelError) as e:  # no rundir, no port for the step channel
        return _failed(rank, result_path, "node %d failed: %s" % (rank, e))
    finally:
        if own_dir:
            shutil.rmtree(run_dir, ignore_errors=True)


def _failed(rank, result_path, reason):
    """A node that could not even start its part: logged, and on node 0 a FAILED result."""
    logging.error("%s", reason)
    if rank == 0 and result_path:
        now = time.time()
        rundir.write_result(
            result_path,
            json.dumps(
                {
                    "state": "FAILED",
                    "exit_code": 1,
                    "signal": 0,
                    "start": now,
                    "end": now,
                    "reason": reason,
                }
            )
            + "\n",
        )
    return 1


def send_signal(run_dir, signum, target):
    try:
        rundir.signal_job(run_dir, signum, target)
    except (OSError, channel.ChannelError) as e:
        sys.stderr.write("signal: job not reachable: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
