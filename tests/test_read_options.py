"""The read commands' option tables (commands/read_options.py) against the hand-written
getopt_long strings they replaced, and the parse's own rules.

LEGACY is each command's SHORT string and LONG dict as they were (`name=KEY ARITY`, in their
order): the rows must give getopt_long the same options, prefixes, ambiguities, operands and
messages on any argv.
"""

import importlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slurmsky.commands.read_options import Opt, Table
from slurmsky.record import Record
from slurmsky.runtime.getopt_long import UsageError, getopt_long

# fmt: off
LEGACY = {
    "squeue": (
        "A:ahi:j::lL:n:M:O:o:p:Pq:R:rs::S:t:u:U:vVw:",
        (
            "accounts=A1 all=a0 array=r0 array-unique=array-unique0 Format=O1 format=o1 "
            "federation=federation0 help=help0 hide=hide0 iterate=i1 jobs=j2 json=json0 "
            "local=local0 long=l0 licenses=L1 cluster=M1 clusters=M1 me=me0 name=n1 "
            "noconvert=noconvert0 node=w1 nodes=w1 nodelist=w1 noheader=h0 partitions=p1 "
            "priority=P0 qos=q1 reservation=R1 sib=sib0 sibling=sib0 sort=S1 start=start0 steps=s2 "
            "states=t1 usage=usage0 user=u1 users=u1 verbose=v0 version=V0 yaml=yaml0"
        ),
    ),
    "sacct": (
        "aA:bBcC:dDeE:f:g:hi:I:j:k:K:lLM:nN:o:pPq:r:s:S:Ttu:vVW:x:X",
        (
            "allusers=a0 accounts=A1 allocations=X0 brief=b0 batch-script=B0 completion=c0 "
            "constraints=C1 delimiter=delimiter1 dump=d0 duplicates=D0 federation=federation0 "
            "helpformat=e0 endtime=E1 env-vars=env-vars0 file=f1 flags=F1 gid=g1 group=g1 help=h0 "
            "nnodes=i1 ncpus=I1 jobs=j1 timelimit-min=k1 timelimit-max=K1 long=l0 allclusters=L0 "
            "cluster=M1 clusters=M1 nodelist=N1 noheader=n0 fields=o1 format=o1 parsable=p0 "
            "parsable2=P0 qos=q1 partition=r1 reason=R1 state=s1 starttime=S1 truncate=T0 uid=u1 "
            "user=u1 usage=U0 verbose=v0 version=V0 wckeys=W1 associations=x1 name=name1 "
            "local=local0 noconvert=noconvert0 units=units1 use-local-uid=use-local-uid0 "
            "whole-hetjob=whole-hetjob2 array=array0 json=json0 yaml=yaml0"
        ),
    ),
    "scancel": (
        "A:bcfHiM:n:p:Qq:R:s:t:u:vVw:",
        (
            "account=A1 batch=b0 ctld=c0 full=f0 help=help0 hurry=H0 interactive=i0 cluster=M1 "
            "clusters=M1 name=n1 jobname=n1 nodelist=w1 partition=p1 qos=q1 quiet=Q0 reservation=R1 "
            "sibling=sibling1 signal=s1 state=t1 states=t1 usage=usage0 user=u1 verbose=v0 "
            "version=V0 wckey=wckey1 me=me0"
        ),
    ),
    "scontrol": (
        "aM:dhoQvV",
        (
            "all=a0 cluster=M1 clusters=M1 details=d0 help=h0 hide=hide0 local=local0 oneliner=o0 "
            "quiet=Q0 sibling=sibling0 usage=usage0 verbose=v0 version=V0 federation=federation0 "
            "future=future0 json=json0 yaml=yaml0"
        ),
    ),
    "sinfo": (
        "adehiM:n:No:O:p:lrRsS:t:TvV",
        (
            "all=a0 dead=d0 exact=e0 noheader=h0 help=help0 hide=hide0 iterate=i1 cluster=M1 "
            "clusters=M1 nodes=n1 Node=N0 format=o1 Format=O1 partition=p1 long=l0 responding=r0 "
            "list-reasons=R0 summarize=s0 sort=S1 states=t1 reservation=T0 usage=usage0 verbose=v0 "
            "version=V0 federation=federation0 local=local0 noconvert=noconvert0 json=json0 "
            "yaml=yaml0"
        ),
    ),
    "sstat": (
        "aehi:j:no:pPvV",
        (
            "allsteps=a0 helpformat=e0 help=h0 pidformat=i0 jobs=j1 noheader=n0 "
            "noconvert=noconvert0 format=o1 fields=o1 parsable=p0 parsable2=P0 usage=usage0 "
            "verbose=v0 version=V0"
        ),
    ),
    "seff": ("hvdf:", ""),
}
# fmt: on


def _legacy(name: str) -> tuple[str, dict]:
    short, longs = LEGACY[name]
    table = {}
    for word in longs.split():
        long, _, key = word.partition("=")
        table[long] = (key[:-1], int(key[-1]))
    return short, table


def _table(name: str) -> Table:
    return importlib.import_module(f"slurmsky.commands.{name}").OPTIONS


def _vocabulary(name: str) -> list[str]:
    """Words an argv is made of: each option (bare, prefixed, with a value attached), letters
    alone and clustered, values, operands, `--`, and what no command knows."""
    short, longs = _legacy(name)
    letters = [c for c in short if c != ":"]
    words = [
        "--",
        "-",
        "x",
        "12",
        "a,b",
        "--bogus",
        "-Z",
        "--=",
        "--no",
        "--s",
        "--p",
        "-" + "".join(letters[:3]),
    ]
    for long in longs:
        words += [f"--{long}", f"--{long}=v", f"--{long[:3]}", f"--{long[:2]}=1"]
    for c in letters:
        words += [f"-{c}", f"-{c}v", f"-h{c}"]
    return words


def _run(fn):
    try:
        return fn()
    except UsageError as exc:
        return ("error", exc.lines, exc.exit_code)


@pytest.mark.parametrize("name", list(LEGACY))
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_rows_read_argv_as_the_legacy_strings(name, data):
    """getopt_long over the rows' strings: the same options (by the legacy key), values and
    operands, or the same error, as over the hand-written strings."""
    argv = data.draw(st.lists(st.sampled_from(_vocabulary(name)), max_size=8))
    table = _table(name)
    short, longs = _legacy(name)
    legacy_key = {
        key: longs[row.longs[0]][0] if row.longs else row.short for key, row in table.by_key.items()
    }
    old = _run(lambda: getopt_long(name, argv, short, longs, table.permute))
    new = _run(lambda: getopt_long(name, argv, table.shortopts, table.longopts, table.permute))
    if new[0] != "error":
        new = ([(legacy_key[k], v) for k, v in new[0]], new[1])
    assert new == old


@pytest.mark.parametrize("name", list(LEGACY))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_parse_applies_each_option_in_order(name, data):
    """Table.parse is getopt_long's options applied one by one: its namespace is what
    applying the options getopt_long returns gives, stopped at the first stop row, and an
    error is the first one met (or getopt_long's own)."""
    argv = data.draw(st.lists(st.sampled_from(_vocabulary(name)), max_size=6))
    table = _table(name)
    module = importlib.import_module(f"slurmsky.commands.{name}")
    args = next(
        v
        for k, v in vars(module).items()
        if k.endswith("Args") and isinstance(v, type) and issubclass(v, Record)
    )
    fresh = (
        (lambda: args(now=0.0)) if "now" in args._fields and "now" not in args._defaults else args
    )

    def by_hand():
        opts, rest = getopt_long(name, argv, table.shortopts, table.longopts, table.permute)
        ns = fresh()
        for key, text in opts:
            row = table.by_key[key]
            if isinstance(getattr(ns, "given", None), dict):  # the texts as given
                ns.given.setdefault(key, []).append(text)
            if row.conflict and getattr(ns, row.conflict[0]) is not None:
                raise UsageError(row.conflict[1])
            for mark in row.marks:
                setattr(ns, mark, True)
            if row.dest is not None and not (text is None and row.arg == 2):
                value = row.const if text is None else text
                if text is None and hasattr(value, "make"):
                    value = value.make()
                elif text is not None and row.convert is not None:
                    value = row.convert(text, ns)
                current = getattr(ns, row.dest)
                if row.action == "store":
                    setattr(ns, row.dest, value)
                elif row.action == "append":
                    setattr(ns, row.dest, current + [value])
                elif row.action == "extend":
                    setattr(ns, row.dest, current + list(value))
                else:
                    setattr(ns, row.dest, [value] + current)
            if row.stop:
                break
        return ns, rest

    assert _run(lambda: table.parse(argv, fresh())) == _run(by_hand)


def test_a_stop_row_ends_the_parse_before_a_later_bad_value():
    from slurmsky.commands import squeue

    ns, _ = squeue.OPTIONS.parse(["-V", "-t", "bogus"], squeue.SqueueArgs())
    assert ns.action == "version" and ns.states is None
    with pytest.raises(UsageError) as exc:
        squeue.OPTIONS.parse(["-t", "bogus", "-V"], squeue.SqueueArgs())
    assert exc.value.lines[0] == "squeue: error: Invalid job state specified: bogus"


def test_conflicts_marks_and_accumulation():
    from slurmsky.commands import sacct, squeue, sstat

    with pytest.raises(UsageError) as exc:
        squeue.OPTIONS.parse(["-o", "%i", "-O", "jobid"], squeue.SqueueArgs())
    assert exc.value.lines == ("squeue: error: -O (--Format) is incompatible with -o (--format)",)
    # a bare optional argument only marks: the operand is read after
    ns, rest = squeue.OPTIONS.parse(["-j", "5", "--step"], squeue.SqueueArgs())
    assert (ns.job_flag, ns.jobs, ns.steps, ns.step_list, ns.override, rest) == (
        True, None, True, None, True, ["5"]
    )  # fmt: skip
    ns, _ = sacct.OPTIONS.parse(["-o", "a", "-b", "-o", "b", "-l"], sacct.SacctArgs(now=0.0))
    assert ns.fields_text == [
        sacct.sacct_format.SACCT_LONG,
        sacct.sacct_format.SACCT_BRIEF,
        "a",
        "b",
    ]
    ns, _ = sstat.OPTIONS.parse(["-o", "x", "--pid", "-o", "y"], sstat.SstatArgs())
    assert ns.fields_text == ["JobID,Nodelist,Pids", "y"]


def test_a_table_refuses_two_rows_for_one_option():
    with pytest.raises(ValueError):
        Table("x", (Opt("a"), Opt("a", ("all",))))
