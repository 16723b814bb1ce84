"""The user's login environment, as slurmd gives it to --export=NONE and --export=NAME jobs."""

from __future__ import annotations

import os
import time

LOGIN_DEFS = "/etc/login.defs"
LOGIN_TIMEOUT = 8  # s for the login shell to print its environment (Slurm's default wait)
# set by the shell itself, not part of what the login gives the job
SHELL_OWN = ("_", "PWD", "OLDPWD", "SHLVL")
LOGIN_MARK = "SLURMSKY_LOGIN_ENV"  # what the profiles print before it is not the environment


def login_defs(path: str = LOGIN_DEFS) -> dict:
    """The settings of login.defs(5) (`NAME value` lines), empty if it cannot be read."""
    found = {}
    try:
        with open(path) as fh:
            for line in fh:
                words = line.split(None, 1)
                if len(words) == 2 and not words[0].startswith("#"):
                    found[words[0]] = words[1].strip()
    except OSError:
        pass
    return found


def login_base(entry, defs: dict) -> dict:
    """What `su - user` starts the login shell with: HOME, SHELL, USER, LOGNAME, PATH from
    login.defs (ENV_SUPATH for root, ENV_PATH otherwise, su's own default without them) and
    MAIL (pam_mail: MAIL_DIR/user)."""
    key, default = (
        ("ENV_SUPATH", "/sbin:/bin:/usr/sbin:/usr/bin")
        if entry.pw_uid == 0
        else ("ENV_PATH", "/bin:/usr/bin")
    )
    path = defs.get(key, default)
    path = path[len("PATH=") :] if path.startswith("PATH=") else path
    return {
        "HOME": entry.pw_dir,
        "SHELL": entry.pw_shell or "/bin/sh",
        "USER": entry.pw_name,
        "LOGNAME": entry.pw_name,
        "PATH": path,
        "MAIL": os.path.join(defs.get("MAIL_DIR", "/var/mail"), entry.pw_name),
    }


LOGIN_REUSE = 60  # s a login environment read for one job serves the next ones


class LoginReading:
    """The user's login environment, the base of --export=NONE or --export=NAME jobs.

    Read by running the login shell (`read_login_environment`), which can take seconds
    (profiles that set up pyenv, conda, ...): an array of such jobs reuses one reading for
    LOGIN_REUSE seconds instead of holding the agent for each element.
    """

    def __init__(self) -> None:
        self.read: tuple[float, dict] | None = None  # when, what

    def __call__(self) -> dict:
        now = time.monotonic()
        if self.read is None or now - self.read[0] > LOGIN_REUSE:
            self.read = (now, read_login_environment())
        return dict(self.read[1])


login_environment = LoginReading()


def read_login_environment() -> dict:
    """As Slurm's slurmd does (`su - user -c env`, SLURM_GET_USER_ENV): the user's login
    shell runs its profile files (/etc/profile, ~/.profile, ...) from what `su -` gives
    (`login_base`) and prints the environment it ends with after a marker, so that what the
    profiles print is not taken for it. If the shell fails or hangs, the base alone.
    """
    import pwd
    import subprocess

    entry = pwd.getpwuid(os.getuid())
    base = login_base(entry, login_defs())
    shell = base["SHELL"]
    try:
        proc = subprocess.run(
            ["-" + os.path.basename(shell), "-c", f"printf '\\0{LOGIN_MARK}\\0'; exec env -0"],
            executable=shell,
            env=base,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=entry.pw_dir if os.path.isdir(entry.pw_dir) else "/",
            timeout=LOGIN_TIMEOUT,
            start_new_session=True,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return base
    marker = f"\0{LOGIN_MARK}\0".encode()
    if proc.returncode != 0 or marker not in proc.stdout:
        return base
    env = {}
    for item in proc.stdout.rsplit(marker, 1)[1].split(b"\0"):
        name, sep, value = item.decode(errors="surrogateescape").partition("=")
        if sep and name not in SHELL_OWN:
            env[name] = value
    return env or base
