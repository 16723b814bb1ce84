"""`sbatch -v`'s values of the options set (from the command line, `SBATCH_*`, `#SBATCH` and
`#PBS` lines alike), as slurm_opt.c's get functions print the parsed option: times as
`00:05:00`, memory in its largest whole unit, counts as numbers, flags as `set`; what Slurm
keeps as the text given, as given."""

from __future__ import annotations

import os
import time

from slurmsky.parse.options import NO_ARG


def set_options(given: list, fields: dict, ignored: dict, cwd: str) -> dict[str, str]:
    """{long name: value text} of the options `given` set (the last source's wins)."""
    values = {**ignored, **fields}
    shown = {}
    for opt, _written, text in given:
        if opt.key in values:  # not dropped by a stronger memory option
            shown[opt.long] = _value(opt, values[opt.key], text, values, cwd)
    return shown


def _value(opt, value, text: str | None, values: dict, cwd: str) -> str:
    long = opt.long
    if long in ("time", "time-min"):
        return _minutes(value)
    if long in ("mem", "mem-per-cpu", "mem-per-gpu", "tmp"):
        return _mbytes(value)
    if long == "nodes":
        low, high = value
        return str(low) if high in (None, low) else f"{low}-{high}"
    if long in ("begin", "deadline"):
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(value))
    if long == "delay-boot" and str(value).isdigit():
        return _minutes(int(value))
    if long in ("exclusive", "oversubscribe"):  # both print the job's sharing (job_desc->shared)
        return values.get("exclusive") or (
            "oversubscribe" if values.get("oversubscribe") else "unset"
        )
    if long in ("requeue", "no-requeue"):
        return "requeue" if value else "no-requeue"
    if long == "open-mode":
        return "a" if str(value).lower().startswith("a") else "t"
    if long == "chdir":
        return os.path.join(cwd, value)
    if long == "kill-on-invalid-dep":
        return "yes" if value else "no"
    if long == "gres" and text is not None:
        return ",".join(p if p.startswith("gres:") else "gres:" + p for p in text.split(","))
    if long in ("verbose", "quiet") or (isinstance(value, int) and not isinstance(value, bool)):
        return str(int(value))
    if opt.arg == NO_ARG or text is None:
        return "set"
    return value if isinstance(value, str) else text


def _minutes(minutes: int | None) -> str:
    """mins2time_str: `00:05:00`, `1-00:00:00`, `UNLIMITED`."""
    if minutes is None:
        return "UNLIMITED"
    days, rest = divmod(minutes, 1440)
    clock = "%02d:%02d:00" % divmod(rest, 60)
    return f"{days}-{clock}" if days else clock


def _mbytes(mb: int) -> str:
    """mbytes_to_str: the largest unit the value is a whole number of (`2G`, `1500`; 0 runs
    off its units: `0?`)."""
    if mb == 0:
        return "0?"
    for unit in "MGTP":
        if mb % 1024 or unit == "P":
            break
        mb //= 1024
    return str(mb) if unit == "M" else f"{mb}{unit}"
