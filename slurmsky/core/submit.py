"""sbatch's fast path: check the request against the backend, store the job, wake the agent.

Nothing here waits for a job to start: sbatch prints its line and exits (unless --wait).
An array is stored as one pending record (its indices as runtime.indexset's text) and the
ids of its elements are reserved now, in one step: a 100 000-element array costs what one
job does. Its elements become rows as they start (state.split_element).
"""

from __future__ import annotations

import _signal
import os
import sys
import time
from contextlib import contextmanager

from slurmsky import backends
from slurmsky.backends import Backend, Feature
from slurmsky.config import Config, load_config
from slurmsky.core import planning, state
from slurmsky.errors import SlurmError
from slurmsky.parse.gres import gres_text
from slurmsky.parse.request import JobRequest
from slurmsky.plan.layout import Layout, default_mem_per_cpu, requested
from slurmsky.runtime import filepattern

WAIT_POLL = 0.2  # s between looks at the state while `sbatch --wait` waits


@contextmanager
def uninterrupted():
    """SIGINT, SIGTERM and SIGHUP held off for the block (delivered when it ends): a job is
    stored and its id printed, or neither."""
    held = {_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP}
    old = _signal.pthread_sigmask(_signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, old)


def submit_batch(req: JobRequest) -> int:
    cfg = load_config()
    with uninterrupted():
        job_id = store(req, cfg, batch=True)
        if req.test_only:
            return 0
        _print_submitted(req, cfg, job_id)  # flushed: a signal held till now may end sbatch
    problem = backends.configured(cfg).unreachable()
    if problem:  # the job waits for it (docs/compatibility.md), saying so once, here
        sys.stderr.write(f"sbatch: warning: {problem}; job {job_id} waits until it answers\n")
    if req.wait:
        return wait_for(job_id)
    return 0


def store(req: JobRequest, cfg: Config, *, batch: bool) -> int:
    """Validate against the backend, allocate ids and store the job; the id sbatch prints.

    Like Slurm, a request the backend can never run consumes an id and is stored FAILED
    before the error is raised; --test-only consumes an id and stores nothing.
    """
    _known_clusters(req, cfg)
    if req.deadline is not None and req.begin is not None and req.deadline < req.begin:
        raise SlurmError("Incompatible begin and deadline time specification")  # opt.c's
    invalid = _invalid(req)
    if invalid:
        raise SlurmError("Batch job submission failed: " + invalid)
    backend = backends.configured(cfg)
    broken = backend.unavailable()
    if broken:
        raise SlurmError(broken)
    if req.components:
        backend.require(Feature.HET_JOBS)
    problem = None if batch or req.test_only else backend.unreachable()
    if problem:  # srun and salloc wait for their allocation: refuse one that cannot come
        raise SlurmError(f"Unable to allocate resources: {problem}")
    try:
        if req.components:
            shaped, shapes = planning.shape_het(req, cfg, backend)
        else:
            shaped = planning.shape(req, cfg, backend)
            shapes = [shaped]
    except SlurmError as exc:
        raise _test_only_error(exc.lines[:-1], exc.lines[-1]) if req.test_only else exc
    if shaped.request.deadline is not None and shaped.request.time is None:
        shaped = shaped.replace(request=_deadline_limit(shaped.request))
        shapes = [shaped, *shapes[1:]]
    req, lay, part = shaped.request, shaped.layout, shaped.part
    if req.time_min is not None and req.time is not None and req.time_min > req.time:
        raise SlurmError(  # over -t, or the minutes left before --deadline
            "Batch job submission failed: Invalid time-min specification (exceeds job's time "
            "or other limits)"
        )
    lacking = next((why for s in shapes if (why := backend.invalid(s.request, s.part))), None)
    if lacking:  # refused before it takes an id, as slurmctld's _job_create
        if req.test_only:
            raise _test_only_error([], lacking)
        raise SlurmError("Batch job submission failed: " + lacking)
    het = len(shapes) > 1  # req is component 0's from here
    max_nodes = shaped.asked.nodes[1] if shaped.asked.nodes and not het else None
    # an array's elements, a heterogeneous job's components: an id each (J, J+1, ...)
    count = req.array.count if req.array else len(shapes)
    conn = state.connect()
    # a team's job is charged to one of its user's accounts (team.py)
    shaped = _charged(conn, shaped)
    shapes = [_charged(conn, s) for s in shapes] if het else [shaped]
    req = shaped.request
    # beyond the partition (its nodes, their CPUs): accepted, pending (EnforcePartLimits=NO)
    # (a heterogeneous job in several partitions: each component in its own)
    units = [(lay, req, part)]
    if len({s.partition for s in shapes}) > 1:
        units = [(s.layout, s.request, s.part) for s in shapes]
    beyond = next((b for u in units if (b := backend.submit_reason(u[0], u[2]))), None)
    too_few = next((r for s in shapes if (r := _too_few_nodes(s.request, s.layout))), None)
    refusal = next((r for u in units if (r := backend.refusal(*u))), None)
    refused = too_few or (None if beyond else refusal)
    if refused and req.hold and not req.test_only and not too_few:
        refused = None  # Slurm holds it; it can never be placed, so it pends when released
    first = state.allocate_ids(conn, count if not (refused or req.test_only) else 1)
    if req.test_only and (refused or beyond or lay.num_nodes > backend.max_nodes(part)):
        raise _test_only_error([], "Requested node configuration is not available")
    if req.dependency is not None:
        from slurmsky.core import deps

        req = req.replace(dependency=deps.at_submission(conn, req.dependency, first))
        shaped = shaped.replace(request=req)
    if refused:
        now = time.time()
        rows = _rows(shapes, req, cfg, first, now, batch=batch)
        for row in rows:
            row.update(
                state="FAILED",
                reason="BadConstraints",
                exit_code=1,
                exit_signal=0,
                start_time=now,
                end_time=now,
            )
        state.add_submission(conn, first, {}, None, rows)
        raise SlurmError(*refused)
    if req.test_only:
        _print_test_only(req, cfg, backend, shaped, first, shapes)
        return first
    plan = planning.plan(shaped, cfg, backend, job_id=first, components=shapes)
    spec = plan.spec
    if het:
        # what the job asked, as scontrol shows it: component 0's (the others have rows)
        lead = shapes[0]
        spec["requested"] = requested(lead.asked, lead.layout, backend.node_mem(lead.part))
    now = time.time()
    rows = _rows(shapes, req, cfg, first, now, batch=batch)
    row = rows[0]
    if spec["array"]:
        row["array_pending"] = spec["array"]["ranges"]
    row["max_nodes"] = max_nodes or None
    if beyond and not row["held"]:
        for each in rows:
            each["reason"] = beyond
    for each in rows[1:]:  # one INSERT for all: the same columns
        each.update({k: None for k in row if k not in each})
    # what the backend says of its task (credentials kept home, module lines without
    # effect), once its checks before storing (the sky workdir's upload cap) have passed
    for line in plan.warnings + tuple(backend.admit(plan, cfg)):
        sys.stderr.write(line + "\n")
    try:
        state.add_submission(conn, first, spec, plan.task, rows)
    except OverflowError:  # a count whose product no 64-bit integer holds (--gres x -c ...)
        raise SlurmError(
            "Batch job submission failed: Requested node configuration is not available"
        ) from None
    from slurmsky.core.daemon import wake

    wake()
    return first


def _charged(conn, shaped):
    """The shaped request with the account the team's state charges it to."""
    from slurmsky.core.state import team

    asked = shaped.request.account
    account = team.account_for(conn, asked)
    if account == asked:
        return shaped
    return shaped.replace(request=shaped.request.replace(account=account))


# slurmctld's length limits, in bytes (job_mgr.c: _test_job_desc_fields; the script's is
# SchedulerParameters=max_script_size, 4 MiB by default); MAXPATHLEN for paths.
_MAX_BYTES = {
    "script": 4 * 1024 * 1024,
    "job_name": 1024,
    "comment": 1024,
    "output": 4096,
    "error": 4096,
    "input": 4096,
    "workdir": 4096,
}


def _test_only_error(details: list[str], last: str) -> SlurmError:
    """--test-only's refusal, as Slurm's will_run answers it: the submission's detail
    lines (a node-size reason) are not printed, the reason follows `allocation failure:`
    (`sbatch: error: invalid partition specified: x` stays, before it)."""
    reason = last.split("Batch job submission failed: ", 1)[-1]
    keep = [line for line in details if line.startswith("invalid partition")]
    return SlurmError(
        *(f"{{prog}}: error: {line}" for line in keep), f"allocation failure: {reason}", bare=True
    )


def _known_clusters(req: JobRequest, cfg: Config) -> None:
    """-M/--clusters: Slurm's error for each name its database lacks (this one cluster, or
    `all`, is known); none known refuses the job."""
    names = req.clusters or req.ignored.get("clusters")
    if not names:
        return
    unknown = [n for n in names.split(",") if n not in (cfg.cluster_name, "all")]
    lines = [f"No cluster '{n}' known by database." for n in unknown]
    if len(unknown) == len(names.split(",")):
        raise SlurmError(
            *lines,
            f"'{names}' can't be reached now, or it is an invalid entry for --cluster.  "
            "Use 'sacctmgr list clusters' to see available clusters.",
        )
    for line in lines:
        sys.stderr.write(f"{req.command}: error: {line}\n")


def _invalid(req: JobRequest) -> str | None:
    """Why slurmctld refuses a job description before it takes an id, if it does."""
    for key, limit in _MAX_BYTES.items():
        value = getattr(req, key)
        if value is not None and len(value.encode("utf-8", "surrogateescape")) > limit:
            return "Pathname of a file, directory or other parameter too long"
    if req.nodes and req.nodes[0] == 0:  # a job needs a node
        return "Node count specification invalid"
    if req.deadline is not None and req.deadline < time.time():  # ESLURM_INVALID_TIME_LIMIT
        return "Requested time limit is invalid (missing or exceeds some limit)"
    return None


def _deadline_limit(req: JobRequest) -> JobRequest:
    """A job with a deadline and no time limit gets the minutes left until its deadline (the
    peer: --deadline=now+1hour shows Timelimit 00:59:00); under a minute, 1, which the
    scheduler finds too long (the job ends DEADLINE, as on the peer)."""
    assert req.deadline is not None
    minutes = int((req.deadline - time.time()) // state.seconds_per_minute())
    return req.replace(time=max(1, minutes))


def _too_few_nodes(req: JobRequest, lay: Layout) -> list[str] | None:
    """--ntasks over --ntasks-per-node needs more nodes than --nodes allows (-N2 -n5
    --ntasks-per-node=2): Slurm refuses the job at submission, whatever the cluster."""
    if req.nodes and req.nodes[1] and lay.num_nodes > req.nodes[1]:
        return ["Batch job submission failed: Requested node configuration is not available"]
    return None


def _rows(
    shapes: list[planning.Shape],
    req: JobRequest,
    cfg: Config,
    first: int,
    now: float,
    *,
    batch: bool,
) -> list[dict]:
    """The job's rows: one, or a heterogeneous job's component rows J+0, J+1, ... (ids
    first, first + 1, ...), each with its own shape (the leader's as its component's: the
    scheduler places the whole, from the spec). `req` is the job's (component 0's) as it
    is stored: its dependency resolved, which every component waits on."""
    if len(shapes) == 1:
        s = shapes[0]
        return [_row(req, cfg, s.layout, s.partition, first, now, batch=batch)]
    rows = []
    for offset, s in enumerate(shapes):
        own = req if offset == 0 else s.request.replace(dependency=req.dependency)
        row = _row(own, cfg, s.layout, s.partition, first + offset, now, batch=batch)
        rows.append(dict(row, submission=first, het_job_id=first, het_job_offset=offset))
    return rows


def _row(
    req: JobRequest,
    cfg: Config,
    lay: Layout,
    part_name: str,
    job_id: int,
    now: float,
    *,
    batch: bool,
) -> dict:
    """One `jobs` row: the request as the read-side commands show it (for an array, its
    pending record, whose paths are the patterns its elements expand)."""
    from slurmsky.plan.runtime_spec import current_user

    user = current_user()
    job_name = "(null)" if req.name_unset else req.job_name  # as the job sees it
    array_job_id = job_id if req.array else None

    def path(pattern: str | None) -> str | None:
        if pattern is None or array_job_id is not None:
            return pattern
        name = filepattern.expand(
            pattern, job_id=job_id, job_name=job_name, user=user, node_name="%N"
        )
        return os.path.join(req.workdir, name)

    stdout = path(req.output or ("slurm-%A_%a.out" if array_job_id else "slurm-%j.out"))
    held = "user" if req.hold else None
    dep = None
    if req.dependency is not None and req.dependency.items:
        from slurmsky.core import deps

        dep = deps.to_text(req.dependency)
    return dict(
        job_id=job_id,
        submission=array_job_id or job_id,
        array_job_id=array_job_id,
        array_throttle=req.array.throttle if req.array else None,
        name=req.job_name,
        user=user,
        uid=os.getuid(),
        gid=os.getgid(),
        account=req.account,
        partition=part_name,
        num_nodes=lay.num_nodes,
        num_cpus=lay.num_cpus,
        num_tasks=lay.num_tasks,
        cpus_per_task=req.cpus_per_task,
        tasks_per_node=list(lay.tasks_per_node),
        cpus_per_node=list(lay.cpus_per_node),
        # --mem-per-gpu is held as the memory per node it amounts to: the nodes count it;
        # the record shows DefMemPerCPU beside it while the job pends, as slurmctld's does
        mem_per_node=req.mem if req.mem_per_gpu is None else lay.mem_per_node,
        mem_per_cpu=req.mem_per_cpu
        if req.mem_per_gpu is None
        else default_mem_per_cpu(cfg, cfg.partitions.get(part_name) or {}),
        gpus_per_node=lay.gpus_per_node,
        gres=gres_text(req.gres),
        time_limit=req.time,
        dependency_spec=dep,
        dependency=deps.describe_unmet(dep) if dep else None,
        kill_on_invalid_dep=bool(req.kill_on_invalid_dep),
        comment=req.comment,
        command=os.path.join(req.submit_dir, req.script_path) if req.script_path else None,
        submit_dir=req.submit_dir,
        workdir=req.workdir,
        stdout=stdout,
        stderr=path(req.error) or stdout,
        stdin=path(req.input) or "/dev/null",
        requeue=req.requeue is not False,
        batch=batch,
        state="PENDING",
        reason="JobHeldUser" if held else ("Dependency" if dep else "None"),
        held=held,
        submit_time=now,
        begin_time=req.begin,
        deadline=req.deadline,
        nice=req.nice,
        oversubscribe="NO" if req.exclusive is not None else ("YES" if req.oversubscribe else None),
        executor=cfg.backend,
    )


def _print_submitted(req: JobRequest, cfg: Config, job_id: int) -> None:
    cluster = cfg.cluster_name if req.clusters else None  # -M: the one cluster it went to
    if req.parsable:
        print(f"{job_id};{cluster}" if cluster else job_id, flush=True)
    elif not req.quiet:
        print(
            f"Submitted batch job {job_id}" + (f" on cluster {cluster}" if cluster else ""),
            flush=True,
        )


def _print_test_only(
    req: JobRequest,
    cfg: Config,
    backend: Backend,
    shaped: planning.Shape,
    job_id: int,
    shapes: list[planning.Shape],
) -> None:
    """Slurm's estimate line (the first nodes that could ever hold the job, now), then what
    the backend would run (the SkyPilot task, say): the job's plan, made first (a task the
    backend cannot make, an infra SkyPilot refuses, is sbatch's error alone)."""
    from slurmsky.runtime import hostlist

    plan = planning.plan(shaped, cfg, backend, job_id=job_id, components=shapes)
    lay, part_name = shaped.layout, shaped.partition
    names = backend.node_names(lay.num_nodes, shaped.part)
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(req.begin or time.time()))
    sys.stderr.write(
        f"{req.command}: Job {job_id} to start at {start} using "
        f"{lay.num_cpus} processors on nodes {hostlist.compress(names)} "
        f"in partition {part_name}\n"
    )
    for line in plan.warnings:  # what the backend says of its task, as at submission
        sys.stderr.write(line + "\n")
    sys.stderr.write(backend.describe(plan))


def wait_exit_code(rec: state.JobRecord) -> int:
    """`sbatch --wait`'s exit for one job: its exit code, 1 if it did not exit by itself."""
    if rec.state in ("COMPLETED", "FAILED") and not rec.exit_signal:
        return rec.exit_code or 0
    return 1


def wait_for(job_id: int) -> int:
    """Block until the job (every element of an array) has ended; the highest exit code."""
    from slurmsky.core.daemon import wake

    conn = state.connect()
    last_wake = time.monotonic()
    while True:
        jobs = state.find_jobs(conn, ids=[job_id])
        if all(j.finished for j in jobs):
            return max((wait_exit_code(j) for j in jobs), default=0)
        if time.monotonic() - last_wake > 5:  # an agent killed meanwhile is started again
            wake()
            last_wake = time.monotonic()
        time.sleep(WAIT_POLL)
