"""strigger: event triggers, as Slurm 22.05 answers where none can be set. Triggers run a
program when a node goes down or a job ends; slurmsky has no such events to offer, so it
answers as a cluster whose SlurmUser alone may set them (the peer's answer to root):
`--get` lists none, `--set` is refused, `--clear` finds nothing.
"""

from __future__ import annotations

from slurmsky.commands.common import run
from slurmsky.commands.read_options import APPEND, OPTIONAL, REQUIRED, Opt, Table, answered
from slurmsky.errors import SlurmError
from slurmsky.record import Factory, Record

USAGE = "Usage: strigger [--set | --get | --clear | --version] [-aAbBcCdDefFgGhHiIjnNopQrtuv]"
ONE_ACTION = "You must use exactly one of the following options: --set, --get or --clear"
NO_TRIGGER = (
    "You must specify a trigger (--down, --up, --reconfig, --time, --fini, --burst_buffer,\n"
    "--primary_slurmctld_failure,\n--primary_slurmctld_resumed_operation,\n"
    "--primary_slurmctld_resumed_control,\n--primary_slurmctld_acct_buffer_full,\n"
    "--backup_slurmctld_failure,\n--backup_slurmctld_resumed_operation,\n"
    "--backup_slurmctld_as_ctrl,\n--primary_slurmdbd_failure,\n"
    "--primary_slurmdbd_resumed_operation,\n--primary_database_failure, or \n"
    "--primary_database_resumed_operation)\n"
)


class StriggerArgs(Record, frozen=False):
    """What strigger's options ask."""

    actions: list = Factory(list)
    events: list = Factory(list)
    action: str | None = None


def _event(short: str, long: str, arg: int = 0) -> Opt:
    return Opt(short, (long,), arg, "events", action=APPEND, const=long, help="an event")


_NO_EFFECT = "accepted, no effect"
# fmt: off
OPTIONS = Table("strigger", (
    Opt("", ("set",), dest="actions", action=APPEND, const="set", help="create a trigger"),
    Opt("", ("get",), dest="actions", action=APPEND, const="get", help="list the triggers"),
    Opt("", ("clear",), dest="actions", action=APPEND, const="clear", help="delete a trigger"),
    _event("", "burst_buffer"), _event("", "front_end"),
    _event("a", "primary_slurmctld_failure"), _event("A", "primary_slurmctld_resumed_operation"),
    _event("b", "primary_slurmctld_resumed_control"), _event("B", "backup_slurmctld_failure"),
    _event("c", "backup_slurmctld_resumed_operation"),
    _event("C", "backup_slurmctld_assumed_control"), _event("d", "down"),
    _event("D", "drained"), _event("e", "primary_slurmctld_acct_buffer_full"),
    _event("F", "fail"), _event("f", "fini"), _event("g", "primary_slurmdbd_failure"),
    _event("G", "primary_slurmdbd_resumed_operation"), _event("h", "primary_database_failure"),
    _event("H", "primary_database_resumed_operation"), _event("I", "idle"),
    _event("r", "reconfig"), _event("t", "time"), _event("u", "up"),
    Opt("", ("flags",), REQUIRED, help=_NO_EFFECT),
    Opt("i", ("id",), REQUIRED, help=_NO_EFFECT),
    Opt("j", ("jobid",), REQUIRED, help=_NO_EFFECT),
    Opt("M", ("cluster",), REQUIRED, help=_NO_EFFECT),
    Opt("n", ("node",), OPTIONAL, help=_NO_EFFECT),
    Opt("N", ("noheader",), help=_NO_EFFECT),
    Opt("o", ("offset",), REQUIRED, help=_NO_EFFECT),
    Opt("p", ("program",), REQUIRED, help=_NO_EFFECT),
    Opt("Q", ("quiet",), help=_NO_EFFECT),
    Opt("", ("user",), REQUIRED, help=_NO_EFFECT),
    Opt("v", ("verbose",), help=_NO_EFFECT),
    Opt("V", ("version",), dest="action", const="version", stop=True, help="the version"),
    Opt("", ("help",), dest="action", const="help", stop=True, help="Slurm's help text"),
    Opt("", ("usage",), dest="action", const="usage", stop=True, help="the usage text"),
))
# fmt: on


def body(argv: list[str]) -> int:
    o, _ = OPTIONS.parse(argv, StriggerArgs())
    if answered(o, USAGE, "strigger"):
        return 0
    if len(o.actions) != 1:
        raise SlurmError(ONE_ACTION)
    action = o.actions[0]
    if action == "get":
        return 0  # none set
    if action == "clear":
        raise SlurmError("slurm_clear_trigger: No such process", bare=True)
    if not o.events:
        raise SlurmError(NO_TRIGGER)
    raise SlurmError("slurm_set_trigger: Access/permission denied", bare=True)


def main() -> None:
    run("strigger", body)
