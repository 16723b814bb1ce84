"""Output file name patterns (``--output``/``--error``/``--input``) as Slurm expands them.

A port of slurmstepd's fname_create (src/slurmd/slurmstepd/fname.c) with its quirks:

* ``%%`` is ``%``; ``%A %a %J %j %N %n %s %t %u %x`` are replaced;
* a number after ``%`` zero-pads numeric fields (``%5j`` -> ``00058``), capped at 10;
* an unknown letter is left as written (``%z`` stays ``%z``), but a width before it
  is eaten all but its last digit (``%5z`` -> ``5z``), as in Slurm;
* a pattern containing a backslash is not expanded at all; the backslashes are removed;
* ``%a`` of a job that is not an array element is NO_VAL (4294967294), ``%A`` is then
  the job id; ``%s``/``%J`` of the batch step use the batch step id / no ``.step``.

Relative paths are resolved against the working directory by the caller.
Standard library only, Python 3.8+: this module ships inside every job.
"""

from __future__ import annotations

__all__ = ["expand", "NO_VAL", "BATCH_STEP_ID"]

NO_VAL = 4294967294  # Slurm's NO_VAL: %a outside an array
BATCH_STEP_ID = 4294967291  # SLURM_BATCH_SCRIPT: %s in the batch step
_MAX_WIDTH = 10


def expand(
    pattern: str,
    *,
    job_id: int,
    array_job_id: int | None = None,
    array_task_id: int | None = None,
    job_name: str,
    user: str,
    node_name: str,
    node_id: int = 0,
    task_id: int = 0,
    step_id: int | None = None,
) -> str:
    """Expand ``pattern`` for one task; ``step_id=None`` means the batch step."""
    if "\\" in pattern:
        return pattern.replace("\\", "")
    numbers = {
        "a": NO_VAL if array_task_id is None else array_task_id,
        "A": job_id if array_task_id is None or array_job_id is None else array_job_id,
        "j": job_id,
        "J": job_id,
        "n": node_id,
        "s": BATCH_STEP_ID if step_id is None else step_id,
        "t": task_id,
    }
    words = {"N": node_name, "u": user, "x": job_name}
    out = []
    i = copied = 0  # copied: start of the text not yet copied (Slurm's q)
    while i < len(pattern):
        if pattern[i] != "%":
            i += 1
            continue
        if pattern[i + 1 : i + 2] == "%":
            out.append(pattern[copied : i + 1])
            i += 2
            copied = i
            continue
        i += 1
        width = 0
        end = i
        while end < len(pattern) and pattern[end] in "0123456789":
            end += 1
        if end > i:  # (no `re`: squeue imports this module)
            out.append(pattern[copied : i - 1])
            width = min(int(pattern[i:end]), _MAX_WIDTH)
            i = end
            copied = i - 1
        if i == len(pattern):
            break
        letter = pattern[i]
        if letter in numbers:
            text = "%0*d" % (width, numbers[letter])
            if letter == "J" and step_id is not None:
                text += ".%d" % step_id
        elif letter in words:
            text = words[letter]
        else:
            continue  # left as written; the next loop turn looks at this char again
        out.append(pattern[copied : i - 1])
        out.append(text)
        i += 1
        copied = i
    out.append(pattern[copied:])
    return "".join(out)


def expand_in_job(pattern: str, environ, **fields) -> str:
    """``expand`` for a step of the job whose SLURM_* environment is ``environ`` (its ids,
    name and user from there; the node and task in ``fields``)."""
    array_job, array_task = environ.get("SLURM_ARRAY_JOB_ID"), environ.get("SLURM_ARRAY_TASK_ID")
    return expand(
        pattern,
        job_id=int(environ.get("SLURM_JOB_ID", 0)),
        array_job_id=int(array_job) if array_job else None,
        array_task_id=int(array_task) if array_task else None,
        job_name=environ.get("SLURM_JOB_NAME", ""),
        user=environ.get("SLURM_JOB_USER", ""),
        **fields,
    )
