"""The environment --export gives a job: Slurm's rule on this machine, and for a cloud the
same minus what must stay home (credentials, host-specific variables).
"""

from __future__ import annotations

import fnmatch

from slurmsky.config import Config
from slurmsky.parse.request import JobRequest

# Never shipped to a cloud unless named in --export=NAME or the config's export.allow:
# credentials, and what only makes sense on the submit host. Matched without regard to case
# (`github_token` is as secret as `GITHUB_TOKEN`).
DEFAULT_DENY = (
    "*_KEY",
    "*_KEY_ID",
    "*_TOKEN",
    "*_SECRET",
    "*_SECRET_*",
    "*PASSWORD*",
    "*PASSWD*",
    "*_PASS",
    "*CREDENTIAL*",
    "AWS_*",
    "GOOGLE_*",
    "GCLOUD_*",
    "AZURE_*",
    "KUBECONFIG",
    "SSH_*",
    "GPG_*",
    "KRB5*",
    "SKYPILOT_*",
    "SLURMSKY_*",
    "SLURM_*",
    "SBATCH_*",
    "SRUN_*",
    "SALLOC_*",
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "PWD",
    "OLDPWD",
    "TERM",
    "DISPLAY",
    "HOSTNAME",
    "MAIL",
    "SHLVL",
    "_",
    "TMPDIR",
    "XDG_*",
    "DBUS_*",
    "LS_COLORS",
    "LD_*",
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "CONDA_*",
    "PS1",
    "TMUX*",
    "STY",
    "WINDOWID",
)


def _denied(name: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(name.upper(), p.upper()) for p in patterns)


def job_environment(req: JobRequest, cfg: Config, *, for_cloud: bool) -> dict:
    """The environment --export gives the job.

    Locally this is Slurm's rule exactly. For a cloud, ALL means "all that is safe": the
    submit host's credentials and host-specific variables stay home unless the user names
    them in --export=NAME (or the config's export.allow).
    """
    exp = req.export
    env = req.submit_env
    mode = exp.mode if exp else "ALL"
    names = exp.names if exp else ()
    if mode == "ALL":
        chosen = dict(env)
        if for_cloud:
            deny = DEFAULT_DENY + tuple(cfg.export.get("deny", ()))
            allow = tuple(cfg.export.get("allow", ()))
            chosen = {k: v for k, v in chosen.items() if not _denied(k, deny) or _denied(k, allow)}
    else:
        chosen = {}
    for name in names:
        if name in env:
            chosen[name] = env[name]
    if exp:
        chosen.update(dict(exp.assignments))
    if req.command == "sbatch" and req.open_mode:  # sbatch hands --open-mode on to the sruns
        chosen["SLURM_OPEN_MODE"] = req.open_mode[0]  # "a" or "t", as Slurm's opt.c sets it
    return chosen
