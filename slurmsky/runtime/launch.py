"""Exec trampoline: what slurmstepd does between fork and exec of a task or batch script.

Run as ``python -I -S launch.py NODE UMASK CWD -- ARGV...`` (a plain script: no imports from
the package) by procs.Reaper.spawn with every signal blocked. It makes itself a process group
leader (so the task's whole group can be signalled; done here, not by the multi-threaded
runtime between fork and exec), resets signal dispositions (Python ignores SIGPIPE,
and a runtime started in the background may ignore SIGINT; tasks must start with defaults)
and unblocks them (a signal sent meanwhile then acts as on the task), sets the umask and
SLURM_TASK_PID (the pid the task will have), drops the LC_CTYPE Python's locale coercion
added, changes to CWD the way slurmstepd does
(falling back to /tmp with its message), runs srun's --task-prolog (the path in
``SLURMSKY_TASK_PROLOG``, taken out of the environment: task_prolog), stops itself when
``SLURMSKY_TASK_STOP`` is set (srun --debugger-test) and execs ARGV (searching
PATH if there is one).
If exec fails it prints
slurmstepd's message and exits with the errno, as slurmstepd does (ENOENT: 2).

Just before the exec it writes what the task's process already used to the pipe whose fd is
in ``SLURMSKY_LAUNCH_REPORT`` (taken out of the task's environment): its peak RSS so far (the
runtime's, which Linux carries across vfork and exec, and this Python's) and its CPU time
(this Python's start), so that the task's rusage at its end counts the task alone
(procs.own_usage).
"""

import os
import sys


def main():
    import signal  # here: the commands import this module for undo_locale_coercion alone

    node, umask, cwd, sep = sys.argv[1:5]
    argv = sys.argv[5:]
    assert sep == "--" and argv
    os.setpgid(0, 0)
    for sig in signal.valid_signals():
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, ())  # the runtime spawned it with all blocked
    os.umask(int(umask, 8))
    undo_locale_coercion()
    os.environ["SLURM_TASK_PID"] = str(os.getpid())
    try:
        os.chdir(cwd)
    except OSError as e:
        _say(
            "slurmstepd-%s: error: couldn't chdir to `%s': %s: going to /tmp instead"
            % (node, cwd, e.strerror)
        )
        os.chdir("/tmp")
    _set_limits(os.environ.pop(LIMITS_VAR, ""))
    prolog = os.environ.pop(PROLOG_VAR, None)
    if prolog:
        status = 1
        if not prolog.startswith("/"):  # slurmstepd's run_command takes full paths only
            _say(
                "slurmstepd-%s: error: run_command: user task_prolog is not fully qualified "
                "pathname (%s)\nslurmstepd-%s: error: user task_prolog did not exit normally. "
                "reason: Run command failed - configuration error" % (node, prolog, node)
            )
        else:
            status = task_prolog(prolog)
        if status:
            _say("slurmstepd-%s: error: --task-prolog failed status=%d" % (node, status))
            os._exit(status)
    report = os.environ.pop(REPORT_VAR, None)
    if report is not None:
        _report(int(report))
    if os.environ.pop(STOP_VAR, None):  # srun --debugger-test: held for a debugger
        _hold(signal)
    try:
        if "PATH" in os.environ:
            os.execvp(argv[0], argv)
        os.execv(argv[0], argv)  # no PATH: slurmstepd looks nowhere else (no default path)
    except OSError as e:
        _say("slurmstepd-%s: error: execve(): %s: %s" % (node, argv[0], e.strerror))
        os._exit(e.errno or 1)
    except ValueError:  # an empty command: execve finds no such file
        _say("slurmstepd-%s: error: execve(): %s: No such file or directory" % (node, argv[0]))
        os._exit(2)


REPORT_VAR = "SLURMSKY_LAUNCH_REPORT"
# srun's soft resource limits (`CORE=0,NOFILE=1024`, -1 unlimited), taken out of the task's
# environment: slurmstepd sets them on its tasks (PropagateResourceLimits=ALL, Slurm's
# default; Slurm passes them as SLURM_RLIMIT_*, which the tasks never see either)
LIMITS_VAR = "SLURMSKY_RLIMITS"
PROLOG_VAR = "SLURMSKY_TASK_PROLOG"
HOLD_GRACE = 0.2  # s a held task waits, once continued, for a signal sent with the SIGCONT
STOP_VAR = "SLURMSKY_TASK_STOP"  # srun --debugger-test: the task stops itself before the exec
PROPAGATED = ("CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK", "AS")


def soft_limits():
    """This process's soft limits of PROPAGATED, as LIMITS_VAR's text."""
    import resource

    return ",".join(
        "%s=%d" % (name, resource.getrlimit(getattr(resource, "RLIMIT_" + name))[0])
        for name in PROPAGATED
        if hasattr(resource, "RLIMIT_" + name)
    )


def _set_limits(text):
    """Each soft limit of LIMITS_VAR's text, as far as the hard limit allows (slurmstepd
    leaves one it cannot set as it is)."""
    if not text:
        return
    import resource

    for item in text.split(","):
        name, _, value = item.partition("=")
        which = getattr(resource, "RLIMIT_" + name, None)
        if which is None:
            continue
        hard = resource.getrlimit(which)[1]
        soft = int(value)
        if hard != resource.RLIM_INFINITY and (soft == resource.RLIM_INFINITY or soft > hard):
            continue
        try:
            resource.setrlimit(which, (soft, hard))
        except (OSError, ValueError):
            pass


def _hold(signal):
    """Stop until continued; a signal that comes with the SIGCONT (the time limit's CONT,
    TERM) then ends the task before it runs, as it ends a task a debugger holds."""
    every = signal.valid_signals() - {signal.SIGCONT}
    signal.pthread_sigmask(signal.SIG_BLOCK, every)
    os.kill(os.getpid(), signal.SIGSTOP)
    got = signal.sigtimedwait(every, HOLD_GRACE)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    if got is not None:
        os.kill(os.getpid(), got.si_signo)


def task_prolog(path):
    """Run srun's --task-prolog as slurmstepd does in the task's process: in the task's
    environment (SLURM_SCRIPT_CONTEXT=prolog_task, which the task keeps), its own process
    group, stdin /dev/null, its stdout and stderr read; once it has exited, each line
    `export NAME=VALUE` sets NAME in the task's environment, `unset NAME` removes it,
    `print TEXT` writes TEXT to the task's stdout. -> its exit status (1: killed, 127: no
    such program)."""
    import subprocess

    os.environ["SLURM_SCRIPT_CONTEXT"] = "prolog_task"
    try:
        proc = subprocess.run(
            [path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=os.setpgrp,  # this process is single-threaded
        )
    except OSError:
        return 127
    if proc.returncode < 0:
        return 1
    lines = proc.stdout.split(b"\n")
    for i, line in enumerate(lines):
        word, _, rest = line.partition(b" ")
        if word == b"print" and _:
            os.write(1, rest.lstrip() + (b"\n" if i < len(lines) - 1 else b""))
        elif word == b"export" and b"=" in rest:
            name, _, value = rest.lstrip().partition(b"=")
            if name.rstrip():
                os.environb[name.rstrip()] = value
        elif word == b"unset" and rest.strip():
            os.environb.pop(rest.strip(), None)
    return proc.returncode


def _report(fd):
    """'MAXRSS_KIB USER_S SYS_S' of this process now to fd, closed (the task never has it)."""
    import resource

    used = resource.getrusage(resource.RUSAGE_SELF)
    try:
        os.write(fd, ("%d %.6f %.6f" % (used.ru_maxrss, used.ru_utime, used.ru_stime)).encode())
    except OSError:
        pass
    os.close(fd)


def undo_locale_coercion(environ=os.environ):
    """Python's C locale coercion (PEP 538) adds LC_CTYPE to the environment of a process
    started without a locale; a job and its tasks must not inherit what nobody set. Linux
    keeps the environment a process was started with in /proc/self/environ. (Used by every
    slurmsky process that starts others with its own environment.)"""
    if "LC_CTYPE" not in environ:
        return
    try:
        with open("/proc/self/environ", "rb") as f:
            initial = f.read().split(b"\0")
    except OSError:
        return  # not Linux: left as Python made it
    if not any(item.startswith(b"LC_CTYPE=") for item in initial):
        del environ["LC_CTYPE"]


def _say(line):
    os.write(2, (line + "\n").encode(errors="replace"))


if __name__ == "__main__":
    main()
