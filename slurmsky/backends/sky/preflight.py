"""What a batch script needs that a cloud node lacks: a static pass over its lines before a
sky job is stored, so the user learns it from a warning, not from a FAILED job on paid nodes.

Each finding names the config line that would map it:

* an absolute path (after `$USER`, `$HOME` and `~`) outside the workdir (which goes up), the
  system's folders and the partition's `file_mounts`/`volumes`, that the script does not make
  itself (`mkdir`, a `>` redirection): `partitions.P.file_mounts`;
* a file or folder under `$HOME` outside the workdir (dotfiles, a venv): the node's home is
  another one;
* `conda activate ENV` of an environment no setup of the job (its modules', its pool's)
  names: `modules: {...: {setup: ...}}`.

`module load` of a module the config lacks is said by task.py. `strict_env: true` in the
config makes these errors: nothing is submitted.
"""

from __future__ import annotations

import os
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from slurmsky.config import Config
    from slurmsky.parse.request import JobRequest

# Folders every node has (a cloud image's own); /opt and /scratch are a cluster's
SYSTEM = (
    "/bin", "/sbin", "/usr", "/lib", "/lib64", "/etc", "/dev", "/proc", "/sys", "/tmp",
    "/var", "/run",
)  # fmt: skip
_PATH = re.compile(r"(?<![\w$}./:@])(/[\w.+-]+(?:/[\w.+-]*)*)")
_CONDA = re.compile(r"\bconda\s+activate\s+([^\s;&|]+)")
_MADE = re.compile(r"\bmkdir\s+(?:-\S+\s+)*([^;&|]+)")
_REDIRECT = re.compile(r">{1,2}\s*(/[^\s;&|]+)")


def _expand(line: str, env: dict) -> str:
    home = env.get("HOME") or os.path.expanduser("~")
    user = env.get("USER") or os.path.basename(home)
    for name, value in (("HOME", home), ("USER", user)):
        line = line.replace("${%s}" % name, value)
        line = re.sub(r"\$%s\b" % name, value.replace("\\", "\\\\"), line)
    return re.sub(r"(^|[\s=:\"'])~(?=/|\s|$)", lambda m: m.group(1) + home, line)


def _under(path: str, folder: str) -> bool:
    folder = folder.rstrip("/") or "/"
    return path == folder or path.startswith(folder + "/") or folder == "/"


def _lines(script: str):
    """(line number, text) of the script's commands: no #! line, comments or #SBATCH."""
    for number, line in enumerate(script.splitlines(), 1):
        text = line.strip()
        if text and not text.startswith("#"):
            yield number, re.sub(r"\s#.*$", "", text)


def findings(req: JobRequest, cfg: Config, part_name: str, part: dict, env: dict) -> list[str]:
    """What the script needs that the nodes of `part_name` lack, one line each."""
    home = _expand("$HOME", env)
    workdir = os.path.abspath(req.workdir)
    mounted = [*part.get("file_mounts", {}), *part.get("volumes", {})]
    setups = " ".join(str(m.get("setup", "")) for m in cfg.modules.values()) + str(
        (part.get("pool") or {}).get("setup", "")
    )
    lines = [(n, _expand(t, env)) for n, t in _lines(req.script)]
    made: set[str] = set()
    for _, text in lines:
        for m in _MADE.finditer(text):
            made.update(w for w in m.group(1).split() if w.startswith("/"))
        made.update(m.group(1) for m in _REDIRECT.finditer(text))
    said: set[str] = set()
    out = []
    where = f"partitions.{part_name}"
    for number, text in lines:
        for m in _CONDA.finditer(text):
            env_name = m.group(1).strip("\"'")
            if env_name not in setups and env_name not in said:
                said.add(env_name)
                out.append(
                    f"line {number}: conda environment {env_name} is not made by any setup "
                    f"of the job: give a module's setup the lines that make it (modules: "
                    f"{{conda: {{setup: 'conda create -y -n {env_name} ...'}}}}) or an "
                    f"image that has it ({where}.image_id)"
                )
        for m in _PATH.finditer(text):
            path = m.group(1).rstrip("/.") or "/"
            if (
                path in said
                or _under(path, workdir)
                or any(_under(path, f) for f in mounted)
                or any(_under(path, f) for f in made)
                or (not _under(path, home) and any(_under(path, s) for s in SYSTEM))
            ):
                continue
            said.add(path)
            if _under(path, home):
                out.append(
                    f"line {number}: {path} is in your home, which the nodes do not have "
                    f"(only the workdir {workdir} goes up): copy it into the workdir, or map "
                    f"it in {where}.file_mounts: {{{path}: {path}}}"
                )
            else:
                out.append(
                    f"line {number}: {path} is not on the nodes (only the workdir "
                    f"{workdir} goes up): map it in {where}.file_mounts: "
                    f"{{{path}: <a bucket or a local folder>}} or {where}.volumes"
                )
    return out
