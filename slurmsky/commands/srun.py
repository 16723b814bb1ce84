"""srun: outside a job, allocate and run a step in one go; inside an allocation, a step.

Outside a job the allocation is a job record whose script runs the node runtime's own srun
(see allocation.py), so the step's environment, output, messages and exit code are the
same as in a batch job. Inside an allocation (SLURM_JOB_ID set, as under salloc, or
--jobid) the job's srun takes over.
"""

from __future__ import annotations

import os

from slurmsky import SLURM_VERSION
from slurmsky.commands.common import other_command, run, warn
from slurmsky.errors import SlurmError
from slurmsky.parse.options import help_text
from slurmsky.parse.request import JobRequest, build_step_request, parse_command_line
from slurmsky.runtime import pmi
from slurmsky.runtime.options import SRUN_USAGE

SCRIPT = '#!/bin/bash\nexec srun "$@"\n'


def body(argv: list[str]) -> int:
    cli = parse_command_line("srun", argv)
    for flag, text in (
        ("help", help_text("srun")),
        ("usage", SRUN_USAGE),
        ("version", f"slurm-wlm {SLURM_VERSION}"),
    ):
        if cli.values.get(flag):
            print(text)
            return 0
    if cli.values.get("mpi") == "list":
        print(pmi.TYPES)
        return 0
    inside = cli.values.get("jobid") or os.environ.get("SLURM_JOB_ID")
    if inside:
        return _step_in(inside, argv[: len(argv) - len(cli.rest)], cli.rest)
    req = build_step_request("srun", cli, dict(os.environ), os.getcwd())
    warn(req.warnings)
    try:
        mpi, warning = pmi.mpi_type(req.mpi or "none")
    except pmi.MpiTypeError as e:
        raise SlurmError(str(e), bare=True) from None
    warn([warning] if warning else [])
    if req.test_only:  # the estimate line only: nothing is allocated
        from slurmsky.config import load_config
        from slurmsky.core.submit import store

        store(req, load_config(), batch=False)
        return 0
    from slurmsky.core.allocation import Allocation, exit_status, relay_signals
    from slurmsky.core.submit import uninterrupted

    with Allocation("srun") as alloc:
        relay_signals(alloc)
        with uninterrupted():  # stored with its id known, or not at all
            alloc.submit(req, SCRIPT, step_argv(req, mpi), output=True, watch=True)
        started = alloc.wait_started()
        if started.start_time is None or started.state == "DEADLINE":  # ended before it ran
            raise SlurmError(
                "srun: Job has been cancelled",
                "srun: error: Unable to allocate resources: Job/step already "
                "completing or completed",
                bare=True,
            )
        rec = alloc.stream_until_done()
    return exit_status(rec)


def step_argv(req: JobRequest, mpi: str | None = None) -> list[str]:
    """The runtime srun's arguments: the step's own options (mpi: the MPI type served, or
    none, when asked for: this srun warned already), then the command."""
    args: list[str] = [f"--mpi={mpi or 'none'}"] if req.mpi else []
    for value, option in (
        (req.ntasks, "--ntasks"),
        (req.ntasks_per_node, "--ntasks-per-node"),
        (req.cpus_per_task, "--cpus-per-task"),
        (req.input, "--input"),
        (req.output, "--output"),
        (req.error, "--error"),
        (req.open_mode, "--open-mode"),
        (req.task_prolog, "--task-prolog"),
        (req.task_epilog, "--task-epilog"),
        (req.slurmd_debug, "--slurmd-debug"),
        (req.wait or None, "--wait"),  # srun's -W N
    ):
        if value is not None:
            args.append(f"{option}={value}")
    if req.nodes:
        args.append(f"--nodes={req.nodes[0]}")
    for g in req.gres:  # the step takes the GPUs asked for, and binds them per task
        if g.name == "gpu":
            args.append(f"--gres=gpu:{g.count}")
    for value, option in (
        (req.gpus, "--gpus"),
        (req.gpus_per_node, "--gpus-per-node"),
        (req.gpus_per_task, "--gpus-per-task"),
    ):
        if value is not None:
            args.append(f"{option}={value.count}")
    if req.cpus_per_gpu is not None:
        args.append(f"--cpus-per-gpu={req.cpus_per_gpu}")
    for flag, option in (
        (req.label, "--label"),
        (req.unbuffered, "--unbuffered"),
        (req.multi_prog, "--multi-prog"),
        (req.exclusive is not None, "--exact"),  # an --exclusive step has its CPUs only
        (req.overcommit, "--overcommit"),
        (req.debugger_test, "--debugger-test"),
        (req.disable_status, "--disable-status"),
        (req.quit_on_interrupt, "--quit-on-interrupt"),
        (req.quiet, "--quiet"),
        (req.kill_on_bad_exit not in (None, "0"), "--kill-on-bad-exit"),
    ):
        if flag:
            args.append(option)
    return args + ["--verbose"] * req.verbose + list(req.script_args)


def _step_in(job_text: str, options: list[str], command: list[str]) -> int:
    """Hand the step to the srun of the running job `job_text` (replaces this process)."""
    from slurmsky.core import state

    job = state.get_job(state.connect(), int(job_text)) if job_text.isdigit() else None
    real = other_command("srun") if job is None else None
    if real:  # a real Slurm's job (a venv shared with a real cluster): its srun's business
        os.execv(real, [real, *options, *command])
    if job is None or job.state not in ("RUNNING", "CONFIGURING") or not job.executor_ref:
        raise SlurmError(f"Unable to create step for job {job_text}: Invalid job id specified")
    kept, words = [], iter(options)
    for word in words:  # --jobid is ours: the job's srun is in that job already
        if word == "--jobid":
            next(words, None)
        elif not word.startswith("--jobid="):
            kept.append(word)
    from slurmsky import backends

    backend = backends.get(job.executor)
    if backend.supports(backends.Feature.REMOTE_ALLOCATION):  # its nodes are elsewhere
        return backend.run_step(state.connect(), job, kept, command)
    tool = os.path.join(job.executor_ref["rundir"], "node0", "bin", "srun")
    os.execve(tool, [tool, *kept, *command], attach_env(job, command, dict(os.environ)))


def attach_env(job, command: list[str], environ: dict) -> dict:
    """The environment of a step started from outside job `job` (`srun --jobid=N`): what
    real srun sets from the allocation it looks up, the step then adds its own. Inside the
    job (or under its salloc) the environment already has it all.

    The job name is srun's: SLURM_JOB_NAME if set (an input variable, like -J), else the
    command's basename, as Slurm names the step (`bash`, not the batch job's name)."""
    if environ.get("SLURM_JOB_ID") == str(job.job_id):
        return environ
    environ.update(
        {
            "SLURM_JOB_ID": str(job.job_id),
            "SLURM_JOBID": str(job.job_id),
            "SLURM_JOB_NODELIST": job.nodelist or "",
            "SLURM_NODELIST": job.nodelist or "",
            "SLURM_NNODES": str(job.num_nodes),
            "SLURM_JOB_PARTITION": job.partition,
            "SLURM_JOB_USER": job.user,
            "SLURM_JOB_UID": str(job.uid),
            "SLURM_JOB_GID": str(job.gid),
            "SLURM_PRIO_PROCESS": str(os.getpriority(os.PRIO_PROCESS, 0)),  # srun's own
        }
    )
    environ.setdefault("SLURM_JOB_NAME", os.path.basename(command[0]) if command else "")
    return environ


def main() -> None:
    run("srun", body)
