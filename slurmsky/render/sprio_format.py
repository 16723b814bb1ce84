"""sprio's output, as Slurm 22.05 prints it: its `%`-codes over each pending job's factors
(core/fairshare.py), its default formats (only the factors with a weight), `-n`'s normalised
values and `-w`'s weights line.
"""

from __future__ import annotations

import math

from slurmsky.runtime.getopt_long import UsageError

# letter -> (title, weighted or normalised, the factor's name in a job's `factors`)
FIELDS = {
    "c": ("CLUSTER", None, "cluster"),
    "i": ("JOBID", None, "job_id"),
    "r": ("PARTITION", None, "partition"),
    "u": ("USER", None, "user"),
    "Y": ("PRIORITY", "weighted", "priority"),
    "y": ("PRIORITY", "normalised", "priority"),
    "S": ("SITE", "weighted", "site"),
    "A": ("AGE", "weighted", "age"),
    "a": ("AGE", "normalised", "age"),
    "B": ("ASSOC", "weighted", "assoc"),
    "b": ("ASSOC", "normalised", "assoc"),
    "F": ("FAIRSHARE", "weighted", "fairshare"),
    "f": ("FAIRSHARE", "normalised", "fairshare"),
    "J": ("JOBSIZE", "weighted", "jobsize"),
    "j": ("JOBSIZE", "normalised", "jobsize"),
    "P": ("PARTITION", "weighted", "partition_factor"),
    "p": ("PARTITION", "normalised", "partition_factor"),
    "Q": ("QOS", "weighted", "qos"),
    "q": ("QOS", "normalised", "qos"),
    "N": ("NICE", "weighted", "nice"),
    "T": ("TRES", "weighted", "tres"),
    "t": ("TRES", "normalised", "tres"),
}
LONG = "%.15i %9r %.8u %.10Y %.10S %.10A %.10B %.10F %.10J %.10P %.10Q %.11N %.20T"
LONG_NORMALISED = "%.15i %9r %.8u %10y %10a %10b %10f %10j %10p %10q %20t"
NOT_FOUND = "Unable to find jobs matching user/id(s) specified"
BASIC = (
    "You are not running a supported priority plugin\n(priority/basic).\n"
    "Only 'priority/multifactor' is supported."
)


def default_format(weights: dict[str, int], *, users: bool, long: bool, norm: bool) -> str:
    """sprio's format when -o gives none: the factors with a weight (all with -l)."""
    if long:
        return LONG_NORMALISED if norm else LONG
    text = "%.15i %9r" + (" %.8u" if users else "")
    if norm:
        text += " %10y"
        letters = (("age", "a"), ("fairshare", "f"))
        return text + "".join(f" %10{c}" for name, c in letters if weights[name])
    text += " %.10Y %.10S"
    return text + "".join(
        f" %.10{c}" for name, c in (("age", "A"), ("fairshare", "F")) if weights[name]
    )


def parse(text: str) -> list[tuple[str, str | None, int, bool]]:
    """A format into (literal text before, letter or None, width, right-justified) pieces;
    `%.10Y`: right-justified in 10, `%9r`: left-justified in 9, `%i`: as it comes."""
    pieces: list[tuple[str, str | None, int, bool]] = []
    literal = ""
    i = 0
    while i < len(text):
        if text[i] != "%":
            literal += text[i]
            i += 1
            continue
        j = i + 1
        right = j < len(text) and text[j] == "."
        j += right
        k = j
        while k < len(text) and text[k].isdigit():
            k += 1
        if k >= len(text) or text[k] not in FIELDS:
            raise UsageError(f"sprio: error: Invalid job format specification: {text[k : k + 1]}")
        pieces.append((literal, text[k], int(text[j:k] or 0), right))
        literal = ""
        i = k + 1
    if literal:
        pieces.append((literal, None, 0, False))
    return pieces


def _cell(text: str, width: int, right: bool) -> str:
    if not width:
        return text
    text = text[:width]
    return text.rjust(width) if right else text.ljust(width)


def _value(letter: str, job: dict) -> str:
    title, kind, key = FIELDS[letter]
    value = job.get(key, 0)
    if kind is None:
        return str(value)
    if key == "tres":
        return ""
    if key == "priority":
        if kind == "weighted":
            return str(value)
        # the share of the highest priority, its digits cut (not rounded), as sprio does
        return "%.8f" % (math.floor(value / 0xFFFFFFFF * 1e8) / 1e8)
    if kind == "weighted":
        return "%.0f" % (value * job["weights"].get(key, 0))
    return "%.7f" % value


def lines(jobs: list[dict], fmt: str, *, header: bool, weights: dict[str, int] | None) -> list[str]:
    """sprio's lines: a header, then `-w`'s weights line (`weights`) or a line per job
    (a dict of its fields and factors, `weights` among them)."""
    pieces = parse(fmt)
    out = []
    if header:
        out.append(
            "".join(lit + (_cell(FIELDS[c][0], w, r) if c else "") for lit, c, w, r in pieces)
        )
    if weights is not None:
        row = {"job_id": "Weights", "partition": "", "user": "", "site": 1, **weights}
        cells = []
        for lit, c, w, r in pieces:
            if c is None:
                cells.append(lit)
                continue
            key = FIELDS[c][2]
            blank = key in ("partition", "user", "priority", "cluster", "tres")
            text = "" if blank else str(row.get(key, 0))
            cells.append(lit + _cell(text, w, r))
        out.append("".join(cells))
        return out
    for job in jobs:
        out.append(
            "".join(lit + (_cell(_value(c, job), w, r) if c else "") for lit, c, w, r in pieces)
        )
    return out
