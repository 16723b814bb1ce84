"""``scontrol`` inside a job: hostlists, this job, and requeue, answered by the node itself.

``show hostnames|hostlist|hostlistsorted`` behave as Slurm's (keyword abbreviations
included; hostnames reads SLURM_NODELIST when given no list), ``show job`` prints a
Slurm-shaped record of this job, ``requeue`` asks node 0 to requeue it. Anything else is
handed to the next ``scontrol`` on PATH (the front end's, where there is one).
"""

import grp
import os
import signal
import sys
import time

from . import channel, hostlist, rundir


def _say(stream, text):
    """One line; a reader that went away (`| head -n1`) ends the output quietly, as C's does."""
    try:
        stream.write(text + "\n")
        stream.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())  # no error at exit either
        raise SystemExit(0) from None


def _is(tag, word, minimum):
    """Slurm's xstrncasecmp(tag, word, MAX(len(tag), minimum)) == 0."""
    tag = tag.lower()
    return word.startswith(tag) and len(tag) >= min(minimum, len(word))


def main(argv, node_dir):
    words = [w for w in argv if not w.startswith("-")]
    oneliner = any(w in ("-o", "--oneliner") for w in argv)
    command = words[0] if words else ""
    if _is(command, "show", 3) and len(words) > 1:
        tag, value = words[1], (words[2] if len(words) > 2 else None)
        if _is(tag, "hostnames", 5):
            if value is None:
                value = os.environ.get("SLURM_NODELIST")
                if value is None:  # unset; set but empty prints nothing, as on Slurm
                    _say(sys.stderr, "scontrol: error: host list is empty")
            try:
                names = hostlist.expand(value or "")
            except ValueError as exc:  # Slurm prints it and carries on: exit 0
                _say(sys.stderr, exc.log("scontrol") + str(exc))
                return 0
            for name in names:
                _say(sys.stdout, name)
            return 0
        for word, minimum, sort in (("hostlist", 5, False), ("hostlistsorted", 9, True)):
            if _is(tag, word, minimum):
                if value is None:
                    _say(sys.stderr, "invalid encode argument")
                    return 1
                try:
                    names = hostlist.expand(value)
                except ValueError as exc:
                    _say(sys.stderr, exc.log("scontrol") + str(exc))
                    return 1
                _say(sys.stdout, hostlist.compress(names, sort=sort))
                return 0
        info = rundir.read_job_info(node_dir)
        if (_is(tag, "jobs", 1) or _is(tag, "jobid", 1)) and _ours(value, info):
            _say(sys.stdout, job_record(info, oneliner))
            return 0
    elif _is(command, "requeue", 3):
        info = rundir.read_job_info(node_dir)
        if all(_ours(value, info) for value in words[1:]):
            try:
                conn = rundir.connect(node_dir, rundir.REPLY_TIMEOUT)
                # The requeue TERMs every process of the job, this one too: on Slurm the
                # reply reaches scontrol before the job is signalled, so it exits 0.
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                conn.send({"t": "requeue"})
                conn.recv()
            except (OSError, channel.ChannelError) as e:
                _say(sys.stderr, "scontrol: error: %s" % e)
                return 1
            return 0
    return _delegate(argv, node_dir)


def _ours(value, info):
    """Whether a job id argument names this job (absent: this job too)."""
    if value is None:
        return True
    ids = {str(info["job_id"])}
    if info["array_job_id"] is not None:
        ids.add("%s_%s" % (info["array_job_id"], info["array_task_id"]))
    return value in ids


def _delegate(argv, node_dir):
    own = os.path.realpath(os.path.join(node_dir, "bin"))
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(directory, "scontrol")
        if (
            os.path.realpath(directory) != own
            and os.access(candidate, os.X_OK)
            and os.path.isfile(candidate)
        ):
            os.execv(candidate, [candidate] + list(argv))
    _say(
        sys.stderr,
        "scontrol: error: %s is not available inside this job" % " ".join(argv or ["(no command)"]),
    )
    return 1


def _duration(seconds):
    days, rest = divmod(int(seconds), 86400)
    text = "%02d:%02d:%02d" % (rest // 3600, rest % 3600 // 60, rest % 60)
    return "%d-%s" % (days, text) if days else text


def _when(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch))


def _group(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def job_record(info, oneliner=False):
    """A minimal ``scontrol show job`` record of the running job."""
    head = "JobId=%d" % info["job_id"]
    if info["array_job_id"] is not None:
        head += " ArrayJobId=%d ArrayTaskId=%d" % (info["array_job_id"], info["array_task_id"])
    limit = info["time_limit"]
    end = _when(info["start"] + limit) if limit else "Unknown"
    names = info["names"]
    lines = [
        "%s JobName=%s" % (head, info["job_name"]),
        "UserId=%s(%d) GroupId=%s(%d) MCS_label=N/A"
        % (info["user"], info["uid"], _group(info["gid"]), info["gid"]),
        "Account=%s QOS=%s" % (info["account"] or "(null)", info["qos"] or "(null)"),
        "JobState=RUNNING Reason=None Dependency=(null)",
        "Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0",
        "RunTime=%s TimeLimit=%s TimeMin=N/A"
        % (_duration(time.time() - info["start"]), _duration(limit) if limit else "UNLIMITED"),
        "StartTime=%s EndTime=%s Deadline=N/A" % (_when(info["start"]), end),
        "Partition=%s" % info["partition"],
        "NodeList=%s" % hostlist.compress(names),
        "BatchHost=%s" % names[0],
        "NumNodes=%d NumCPUs=%d NumTasks=%d CPUs/Task=%d"
        % (len(names), info["cpus"], info["ntasks"], info["cpus_per_task"]),
        "WorkDir=%s" % info["workdir"],
        "StdErr=%s" % info["stderr"],
        "StdIn=%s" % info["stdin"],
        "StdOut=%s" % info["stdout"],
    ]
    if oneliner:
        return " ".join(lines)
    return "\n   ".join(lines) + "\n"
