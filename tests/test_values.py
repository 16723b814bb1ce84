"""Value parsers against real Slurm 22.05: every pair from the captures in
shared/reference/slurm-captures (named per case), Slurm's source for the rest."""

import signal
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slurmsky.display import format_elapsed, format_hms, format_limit, format_mem
from slurmsky.parse import signals, times
from slurmsky.parse.arrays import ArraySpec, parse_array
from slurmsky.parse.dependency import Dependency, DepItem, format_dependency, parse_dependency
from slurmsky.parse.export import Export, parse_export
from slurmsky.parse.gres import GpuSpec, Gres, parse_gpus, parse_gres
from slurmsky.parse.scalars import (
    SubmitError,
    parse_bool_yes_no,
    parse_int,
    parse_mem,
    parse_nodes,
    parse_open_mode,
)
from slurmsky.parse.signals import SignalSpec, parse_signal
from slurmsky.parse.times import parse_begin, parse_time
from slurmsky.runtime import indexset

# --- time limits: sbatch-time-formats.txt (squeue %l of each) ---------------------------


@pytest.mark.parametrize(
    "text, minutes, shown",
    [
        ("1", 1, "1:00"),
        ("30", 30, "30:00"),
        ("90", 90, "1:30:00"),
        ("1:30", 2, "2:00"),
        ("0:90", 2, "2:00"),
        ("1:00:00", 60, "1:00:00"),
        ("25:00:00", 1500, "1-01:00:00"),
        ("1-0", 1440, "1-00:00:00"),
        ("1-12", 2160, "1-12:00:00"),
        ("1-0:30", 1470, "1-00:30:00"),
        ("1-00:00:00", 1440, "1-00:00:00"),
        ("0", None, "UNLIMITED"),
        ("infinite", None, "UNLIMITED"),
        ("UNLIMITED", None, "UNLIMITED"),
        ("-5", -1, "INVALID"),
        ("2-25", 4380, "3-01:00:00"),
        ("00:00:30", 1, "1:00"),
        # time_str2secs forms not in the capture
        ("-1", None, "UNLIMITED"),
        ("Unlimited", None, "UNLIMITED"),
        ("1-", 1440, "1-00:00:00"),
        ("1-2:3:4", 1564, "1-02:04:00"),
        ("0:0:1", 1, "1:00"),
    ],
)
def test_time(text, minutes, shown):
    assert parse_time(text, "--time") == minutes
    assert format_limit(minutes) == shown


@pytest.mark.parametrize(
    "text",
    ["1:2:3:4", "xx", "", "-", "1:", ":1", "1::2", "1:2-3", "1-2-3", "1.5", " 1", "+1", "1-:2"],
)
def test_time_invalid(text):  # sbatch-time-formats.txt, sbatch-bad-time.txt
    with pytest.raises(ValueError) as error:
        parse_time(text, "--time")
    assert str(error.value) == "Invalid --time specification"
    assert not isinstance(error.value, SubmitError)


def test_time_message_names_the_option():
    with pytest.raises(ValueError, match=r"^Invalid --time-min specification$"):
        parse_time("x", "--time-min")


@pytest.mark.parametrize(
    "seconds, shown",
    [
        # squeue-default.txt, squeue-o-percent-fields.txt (%M, %l, %L)
        (0, "0:00"),
        (78, "1:18"),
        (51, "0:51"),
        (109, "1:49"),
        (3491, "58:11"),
        (1691, "28:11"),
        (3600, "1:00:00"),
        (600, "10:00"),
        (491, "8:11"),
        (2 * 86400, "2-00:00:00"),
        (172691, "1-23:58:11"),
        (365 * 86400, "365-00:00:00"),
        (365 * 86400 - 82, "364-23:58:38"),
        (365 * 86400 + 1, "INVALID"),
        (-1, "INVALID"),
    ],
)
def test_format_elapsed(seconds, shown):
    assert format_elapsed(seconds) == shown


@pytest.mark.parametrize(
    "seconds, shown",
    [
        # timeout-sacct.txt: Elapsed and Timelimit
        (67, "00:01:07"),
        (71, "00:01:11"),
        (60, "00:01:00"),
        (0, "00:00:00"),
        (86400, "1-00:00:00"),
        (90061, "1-01:01:01"),
        (-1, "INVALID"),
    ],
)
def test_format_hms(seconds, shown):
    assert format_hms(seconds) == shown


@given(st.integers(1, 365 * 1440))
def test_time_round_trip(minutes):
    assert parse_time(format_limit(minutes), "--time") == minutes


# --- memory: sbatch-mem-formats.txt (squeue %m and TRES) ---------------------------------


@pytest.mark.parametrize(
    "text, mb, shown",
    [
        ("1G", 1024, "1G"),
        ("1024", 1024, "1G"),
        ("1500M", 1500, "1500M"),
        ("0", 0, "0"),
        ("200", 200, "200M"),
        ("5G", 5120, "5G"),
        ("1T", 1048576, "1T"),
        ("4000", 4000, "4000M"),  # TRES mem of --mem=0 on a 4000 MB node
        ("100", 100, "100M"),  # DefMemPerCPU, squeue-o-percent-fields.txt
        ("954M", 954, "954M"),  # tool-dask-sbatch.txt header
        ("1gb", 1024, "1G"),
        ("2048k", 2, "2M"),
        ("1K", 1, "1M"),
        ("1025KB", 2, "2M"),
    ],
)
def test_mem(text, mb, shown):
    assert parse_mem(text, "--mem") == mb
    assert format_mem(mb) == shown


@pytest.mark.parametrize("text", ["abc", "", "1.5G", "-1", "1P", "1GBB", "10 ", "1B", "G"])
def test_mem_invalid(text):
    with pytest.raises(ValueError) as error:
        parse_mem(text, "--mem-per-cpu")
    assert str(error.value) == "Invalid --mem-per-cpu specification"


def test_format_mem_beyond_units():
    assert format_mem(1024**3) == "1P"
    assert format_mem(1024**4) == "1?"


@pytest.mark.parametrize(
    "mb, shown",
    [(64000, "62.50G"), (1536, "1.50G"), (3584, "3.50G"), (1280, "1280M"), (1572864, "1.50T")],
)
def test_format_mem_halves_are_exact(mb, shown):
    """Slurm's convert_num_unit (exact mode) goes up while the whole part is a multiple of
    512: the peer shows --mem=64000 as 62.50G and --mem=1280 as 1280M."""
    assert format_mem(mb) == shown


@given(st.integers(0, 1024**3 - 1))
def test_mem_round_trip(mb):
    shown = format_mem(mb)
    if "." in shown:  # a half: Slurm's parsers take whole numbers only
        assert float(shown[:-1]) * 1024 ** "MGTP".index(shown[-1]) == mb
    else:
        assert parse_mem(shown, "--mem") == mb


# --- counts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, nodes",
    [
        ("2", (2, 2)),
        ("2-4", (2, 4)),
        ("-4", (1, 4)),
        ("2-0", (2, 0)),
        ("0", (0, 0)),
        ("1k", (1024, 1024)),
        (" 3 ", (3, 3)),
        ("4-4", (4, 4)),
    ],
)
def test_nodes(text, nodes):
    assert parse_nodes(text, "--nodes") == nodes


@pytest.mark.parametrize(
    "text, message",
    [
        ("abc", '"abc" is not a valid node count'),  # sbatch-bad-directive-nodes.txt
        ("", '"" is not a valid node count'),
        ("2x", '"2x" is not a valid node count'),
        ("a-3", '"a" is not a valid node count'),
        ("3-b", '"b" is not a valid node count'),
        ("4-2", "Maximum node count 2 is less than minimum node count 4"),
        ("2-", "Maximum node count -1 is less than minimum node count 2"),
    ],
)
def test_nodes_invalid(text, message):
    with pytest.raises(ValueError) as error:
        parse_nodes(text, "--nodes")
    assert str(error.value) == message
    assert not isinstance(error.value, SubmitError)


@pytest.mark.parametrize("text, count", [("4", 4), ("+2", 2), (" 7", 7)])
def test_int(text, count):
    assert parse_int(text, "--ntasks") == count


@pytest.mark.parametrize(
    "text, message",
    [
        ("abc", 'Invalid numeric value "abc" for --ntasks.'),
        ("0", 'Invalid numeric value "0" for --ntasks.'),
        ("-3", 'Invalid numeric value "-3" for --ntasks.'),
        ("", 'Invalid numeric value "" for --ntasks.'),
        ("2 ", 'Invalid numeric value "2 " for --ntasks.'),
        ("99999999999999999999", "Numeric argument (9223372036854775807) to big for --ntasks."),
    ],
)
def test_int_invalid_exits_1(text, message):
    with pytest.raises(SubmitError) as error:
        parse_int(text, "--ntasks")
    assert str(error.value) == message
    assert error.value.reason is None


@pytest.mark.parametrize("text, value", [("yes", True), ("no", False), ("YES", True)])
def test_yes_no(text, value):
    assert parse_bool_yes_no(text, "--kill-on-invalid-dep") is value


def test_yes_no_invalid():
    with pytest.raises(ValueError, match="^Invalid --kill-on-invalid-dep specification$"):
        parse_bool_yes_no("maybe", "--kill-on-invalid-dep")


@pytest.mark.parametrize(
    "text, mode",
    [("append", "append"), ("truncate", "truncate"), ("A", "append"), ("tx", "truncate")],
)
def test_open_mode(text, mode):
    assert parse_open_mode(text, "--open-mode") == mode


def test_open_mode_invalid():
    with pytest.raises(ValueError, match=r"^Invalid --open-mode argument: x\. Ignored$"):
        parse_open_mode("x", "--open-mode")


# --- gres and gpus (env-d*.txt submissions) ------------------------------------------------


@pytest.mark.parametrize(
    "text, gres",
    [
        ("gpu:1", (Gres("gpu", None, 1),)),
        ("gpu:3", (Gres("gpu", None, 3),)),
        ("gpu", (Gres("gpu", None, 1),)),
        ("gpu:a100:2", (Gres("gpu", "a100", 2),)),
        ("gpu:a100", (Gres("gpu", "a100", 1),)),
        ("gpu:1,shard:2", (Gres("gpu", None, 1), Gres("shard", None, 2))),
        ("mps:1k", (Gres("mps", None, 1024),)),
        ("none", ()),
    ],
)
def test_gres(text, gres):
    assert parse_gres(text, "--gres") == gres


@pytest.mark.parametrize("text", ["", "gpu:", ":1", "gpu:a:b", "gpu:a:1:2", "gpu,,x"])
def test_gres_invalid(text):
    with pytest.raises(SubmitError) as error:
        parse_gres(text, "--gres")
    assert str(error.value) == (
        "Batch job submission failed: Invalid generic resource (gres) specification"
    )
    assert error.value.reason == "Invalid generic resource (gres) specification"


@pytest.mark.parametrize(
    "text, spec",
    [
        ("2", GpuSpec(None, 2)),
        ("1", GpuSpec(None, 1)),
        ("a100:2", GpuSpec("a100", 2)),
        ("a100", GpuSpec("a100", 1)),
    ],
)
def test_gpus(text, spec):
    assert parse_gpus(text, "--gpus") == spec


@pytest.mark.parametrize("text", ["", "a:b:c", "a100:1,v100:1"])
def test_gpus_invalid(text):
    with pytest.raises(SubmitError):
        parse_gpus(text, "--gpus-per-node")


# --- arrays: env-c-submit.txt, squeue-pending-arrays*.txt, scontrol-show-job-array.txt ------


@pytest.mark.parametrize(
    "text, indices, throttle, shown",
    [
        ("1-7:2%2", (1, 3, 5, 7), 2, "1,3,5,7%2"),  # env-c: tasks 1 3 5 7
        ("1-7", tuple(range(1, 8)), None, "1-7"),  # 139_[1-7]
        ("1-7:2", (1, 3, 5, 7), None, "1,3,5,7"),  # 140_[1,3,5,7]
        ("1,3,10-12", (1, 3, 10, 11, 12), None, "1,3,10-12"),  # 141_[1,3,10-12]
        ("0-3", (0, 1, 2, 3), None, "0-3"),  # 142_[0-3]
        ("3-7%2", (3, 4, 5, 6, 7), 2, "3-7%2"),  # squeue-default.txt 69_[3-7%2]
        ("1-9%1", tuple(range(1, 10)), 1, "1-9%1"),  # ArrayTaskId=1-9%1
        ("0-5%2", tuple(range(6)), 2, "0-5%2"),  # sacct 2_[0-5%2]
        ("1-3", (1, 2, 3), None, "1-3"),  # sbatch-parsable-array.txt
        ("2-3", (2, 3), None, "2-3"),
        ("4", (4,), None, "4"),
        ("1,5,7", (1, 5, 7), None, "1,5,7"),
        ("0-999%10", tuple(range(1000)), 10, "0-999%10"),
        ("5,1,1-2", (1, 2, 5), None, "1-2,5"),
        ("[1-3]", (1, 2, 3), None, "1-3"),
        ("1-3%0", (1, 2, 3), None, "1-3"),
        ("1000", (1000,), None, "1000"),
    ],
)
def test_array(text, indices, throttle, shown):
    spec = parse_array(text, "--array")
    assert (spec.ranges, spec.count, spec.throttle) == (
        indexset.compress(indices),
        len(indices),
        throttle,
    )
    assert indexset.display(indexset.compress(indices), throttle) == shown


@pytest.mark.parametrize(
    "text,step",
    [("1,6,7,12", 1), ("3,5-9", 1), ("0-10:5,20", 5), ("0-4:2,5", 2), ("1-7:2%2", 2), ("4", 1)],
)
def test_array_step_is_the_first_items_stride(text, step):
    """SLURM_ARRAY_TASK_STEP as the peer set it for each of these specs."""
    assert parse_array(text, "--array").step == step


@pytest.mark.parametrize(
    "text",
    [
        "abc",
        "1001",
        "0-1001",
        "5-1",
        "-1",
        "1-10:0",
        "1-10:-1",
        "1:2",
        "1-2x",
        "1-1001:2",
        ",",
        "1-3:1001",
    ],
)
def test_array_invalid(text):
    with pytest.raises(SubmitError) as error:
        parse_array(text, "--array")
    assert str(error.value) == "Batch job submission failed: Invalid job array specification"


def test_array_max_size():
    assert parse_array("0-4999", "--array", max_array_size=5000).ranges == "0-4999"
    with pytest.raises(SubmitError):
        parse_array("5000", "--array", max_array_size=5000)


@given(st.sets(st.integers(0, 1000), min_size=1), st.none() | st.integers(1, 1000))
def test_array_round_trip(indices, throttle):
    ordered = tuple(sorted(indices))
    shown = indexset.display(indexset.compress(ordered), throttle)
    assert parse_array(shown, "--array") == ArraySpec(
        indexset.compress(ordered), len(ordered), throttle
    )


_ARRAY_ITEMS = st.tuples(st.integers(0, 300), st.integers(0, 300), st.integers(1, 40))


@given(st.lists(_ARRAY_ITEMS, min_size=1, max_size=6), st.none() | st.integers(1, 50))
def test_array_of_ranges_is_its_indices(items, throttle):
    """Any list of `lo-hi:step` items (in any order, overlapping or not), kept as ranges,
    says what the indices it names, expanded, say: the same text, count and step."""
    words = [f"{lo}-{lo + span}:{step}" for lo, span, step in items]
    text = ",".join(words) + (f"%{throttle}" if throttle else "")
    indices = sorted({i for lo, span, step in items for i in range(lo, lo + span + 1, step)})
    spec = parse_array(text, "--array", max_array_size=1001)
    assert spec == ArraySpec(indexset.compress(indices), len(indices), throttle, items[0][2])


def _greedy_reference(values: list[int]) -> str:
    """compress as it was written first, index by index: the stored text must not change."""
    items, i, n = [], 0, len(values)
    while i < n:
        lo = values[i]
        if i + 2 < n and values[i + 1] - lo == values[i + 2] - values[i + 1]:
            step, j = values[i + 1] - lo, i + 2
            while j + 1 < n and values[j + 1] - values[j] == step:
                j += 1
            items.append((lo, values[j], step))
            i = j + 1
        elif i + 1 < n and values[i + 1] == lo + 1:
            items.append((lo, lo + 1, 1))
            i += 2
        else:
            items.append((lo, lo, 1))
            i += 1
    return indexset.text(items)


@given(st.lists(st.integers(0, 100) | st.sampled_from(range(0, 100, 4)), max_size=40), st.data())
def test_index_set_normal_form(values, data):
    """compress (from indices) and normal (from sorted, disjoint items, in O(items)) write
    the one text of an index set, the greedy runs compress always wrote."""
    ordered = sorted(set(values))
    expected = _greedy_reference(ordered)
    assert indexset.compress(ordered) == expected
    # the same indices cut into items anywhere (each item an arithmetic run of them)
    items, i = [], 0
    while i < len(ordered):
        j = i + data.draw(st.integers(0, 3))
        while j >= i + 1 and (
            j >= len(ordered)
            or len({b - a for a, b in zip(ordered[i : j + 1], ordered[i + 1 : j + 1])}) > 1
        ):
            j -= 1
        step = ordered[i + 1] - ordered[i] if j > i else 1
        items.append((ordered[i], ordered[j], step))
        i = j + 1
    assert indexset.normal(items) == expected


@given(st.sets(st.integers(0, 200), min_size=1), st.data())
def test_index_sets(indices, data):
    """runtime.indexset, what the state keeps of an array: its text holds the indices, in
    O(runs) (an arithmetic run of any length is one item), and answers as the list would."""
    ordered = sorted(indices)
    items = indexset.parse(indexset.compress(ordered))
    assert list(indexset.iterate(items)) == ordered and indexset.count(items) == len(ordered)
    assert len(items) <= len(ordered)
    probe = data.draw(st.integers(-1, 201))
    assert indexset.contains(items, probe) == (probe in indices)
    if probe in indices:
        assert indexset.at(items, indexset.rank(items, probe)) == probe
        rest = indexset.remove(items, probe)
        assert list(indexset.iterate(rest)) == [i for i in ordered if i != probe]
        assert indexset.parse(indexset.text(rest)) == rest
    else:
        assert indexset.remove(items, probe) == items
    # squeue's task string: consecutive indices as ranges, the others listed
    runs: list = []
    for index in ordered:
        if runs and runs[-1][1] == index - 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    shown = ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
    assert indexset.display(indexset.compress(ordered)) == shown


def test_index_set_of_a_large_array():
    assert indexset.compress(range(100000)) == "0-99999"
    assert indexset.normal([(0, 99999, 1)]) == "0-99999"
    assert parse_array("0-99999", "--array", max_array_size=100000).count == 100000
    assert indexset.compress(range(0, 99999, 2)) == "0-99998:2"
    items = indexset.parse("0-99998:2")
    assert (indexset.count(items), indexset.at(items, 49999)) == (50000, 99998)
    assert indexset.text(indexset.remove(items, 50)) == "0-48:2,52-99998:2"


# --- dependencies: dependency-*.txt -------------------------------------------------------


def _items(*pairs):
    return tuple(DepItem(kind, job) for kind, job in pairs)


@pytest.mark.parametrize(
    "text, dependency",
    [
        ("afterok:113", Dependency(_items(("afterok", 113)), False)),
        ("afterok:113:114", Dependency(_items(("afterok", 113), ("afterok", 114)), False)),
        ("afterok:113,afterok:114", Dependency(_items(("afterok", 113), ("afterok", 114)), False)),
        ("afterok:113?afterok:114", Dependency(_items(("afterok", 113), ("afterok", 114)), True)),
        ("afterany:114", Dependency(_items(("afterany", 114)), False)),
        ("afternotok:114", Dependency(_items(("afternotok", 114)), False)),
        ("after:113", Dependency(_items(("after", 113)), False)),
        ("singleton", Dependency((DepItem("singleton", None),), False)),
        (
            "afterok:1:2,afterany:3",
            Dependency(_items(("afterok", 1), ("afterok", 2), ("afterany", 3)), False),
        ),
        ("after:1+5", Dependency((DepItem("after", 1, None, 5),), False)),
        ("afterok:12_3", Dependency((DepItem("afterok", 12, "3"),), False)),
        ("afterok:12_*", Dependency((DepItem("afterok", 12, "*"),), False)),
        ("aftercorr:7", Dependency(_items(("aftercorr", 7)), False)),
        ("afterburstbuffer:7", Dependency(_items(("afterburstbuffer", 7)), False)),
        ("AfterOK:7,SINGLETON", Dependency(_items(("afterok", 7), ("singleton", None)), False)),
        ("12", Dependency(_items(("afterany", 12)), False)),
        ("12,13", Dependency(_items(("afterany", 12), ("afterany", 13)), False)),
        ("afterok:1?2", Dependency(_items(("afterok", 1), ("afterany", 2)), True)),
        ("afterok:999999", Dependency(_items(("afterok", 999999)), False)),
        ("", Dependency((), False)),
        ("0", Dependency((), False)),
    ],
)
def test_dependency(text, dependency):
    assert parse_dependency(text, "--dependency") == dependency


@pytest.mark.parametrize(
    "text",
    [
        "afterfoo:1",  # dependency-bad-syntax.txt
        "afterok",
        "afterok:",
        "afterok:0",
        "afterok:x",
        "afterok:1:",
        "afterok:1,",
        "afterok:1+5",
        "after:1+0",
        "singletonx",
        "12?13",
        "12,afterok:1",
        "afterok:1,2?3",
        "expand:5",
        "abc",
        "afterok:1_x",
        "afterok:-1",
    ],
)
def test_dependency_invalid(text):
    with pytest.raises(SubmitError) as error:
        parse_dependency(text, "--dependency")
    assert str(error.value) == "Batch job submission failed: Job dependency problem"
    assert error.value.reason == "Job dependency problem"


@pytest.mark.parametrize(
    "text, status, shown",
    [
        # squeue-o-percent-fields.txt, dependency-matrix.txt (%E)
        ("afterok:67", "unfulfilled", "afterok:67(unfulfilled)"),
        ("afterok:113:114", "unfulfilled", "afterok:113(unfulfilled),afterok:114(unfulfilled)"),
        (
            "afterok:113?afterok:114",
            "unfulfilled",
            "afterok:113(unfulfilled)?afterok:114(unfulfilled)",
        ),
        ("singleton", "unfulfilled", "singleton(unfulfilled)"),
        ("after:113", "unfulfilled", "after:113(unfulfilled)"),
        ("afterok:114", "failed", "afterok:114(failed)"),
        ("afterany:114", "unfulfilled", "afterany:114(unfulfilled)"),
        ("afternotok:114", "unfulfilled", "afternotok:114(unfulfilled)"),
        ("after:1+5", "unfulfilled", "after:1+5(unfulfilled)"),
        ("afterok:12_3", "unfulfilled", "afterok:12_3(unfulfilled)"),
        ("0", "unfulfilled", "(null)"),
    ],
)
def test_format_dependency(text, status, shown):
    dependency = parse_dependency(text, "--dependency")
    assert format_dependency(dependency, lambda item: status) == shown


def test_format_dependency_on_array_and_status_dict():
    # dependency-afterok-on-array.txt: afterok:<array id> shows as afterok:130_*
    item = DepItem("afterok", 130, "*")
    assert format_dependency(Dependency((item,), False), {item: "unfulfilled"}) == (
        "afterok:130_*(unfulfilled)"
    )


# --- export: export-*.txt ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, export",
    [
        ("ALL,FOO=bar,BAR=baz", Export("ALL", (), (("FOO", "bar"), ("BAR", "baz")))),
        ("ALL,FOO=bar", Export("ALL", (), (("FOO", "bar"),))),
        ("NONE", Export("NONE", (), ())),
        ("FOO", Export(None, ("FOO",), ())),
        ("FOO=bar", Export(None, (), (("FOO", "bar"),))),
        ("ALL", Export("ALL", (), ())),
        ("all", Export("ALL", (), ())),
        ("NIL", Export("NIL", (), ())),
        ("FOO=bar,BAR", Export(None, ("BAR",), (("FOO", "bar"),))),
        ("FOO,all", Export("ALL", ("FOO",), ())),
        ('FOO="a,b",BAR', Export(None, ("BAR",), (("FOO", '"a,b"'),))),
        ('"FOO=a,b",BAR', Export(None, ("BAR",), (("FOO", "a,b"),))),
        ("A=x=y,,B", Export(None, ("B",), (("A", "x=y"),))),
        ("NONE,FOO", Export(None, ("NONE", "FOO"), ())),
        ("", Export(None, (), ())),
    ],
)
def test_export(text, export):
    assert parse_export(text, "--export") == export


# --- signals: timeout-*, scancel-signal-*, tool-submitit-scancel-signal.txt ----------------


@pytest.mark.parametrize(
    "text, spec",
    [
        ("B:USR1@30", SignalSpec(signal.SIGUSR1, 30, True, False)),
        ("USR1", SignalSpec(signal.SIGUSR1, 60, False, False)),
        ("SIGTERM", SignalSpec(signal.SIGTERM, 60, False, False)),
        ("usr2@90", SignalSpec(signal.SIGUSR2, 90, False, False)),
        ("10@120", SignalSpec(10, 120, False, False)),
        ("R:INT", SignalSpec(signal.SIGINT, 60, False, True)),
        ("RB:KILL@5", SignalSpec(signal.SIGKILL, 5, True, True)),
        ("BR:HUP", SignalSpec(signal.SIGHUP, 60, True, True)),
        ("B:sigxcpu@0", SignalSpec(signal.SIGXCPU, 0, True, False)),
    ],
)
def test_signal(text, spec):
    assert parse_signal(text, "--signal") == spec


@pytest.mark.parametrize(
    "text", ["FOO", "", "0", "USR1@x", "USR1@-1", "USR1@70000", "B:", "70000", "USR1@5s", "SIGUSR"]
)
def test_signal_invalid(text):
    with pytest.raises(ValueError, match="^Invalid --signal specification$"):
        parse_signal(text, "--signal")


# srun and salloc on the peer: B: (any case, alone or with R) is `Invalid --signal
# specification` (255); R: and plain signals are accepted.
@pytest.mark.parametrize(
    "text, ok",
    [
        ("B:USR1", False),
        ("b:USR1@10", False),
        ("RB:USR1", False),
        ("BR:USR1", False),
        ("R:USR1", True),
        ("USR1@30", True),
        ("NOPE", False),
    ],
)
def test_step_signal_refuses_the_batch_form(text, ok):
    if ok:
        assert signals.parse_step_signal(text, "--signal") == parse_signal(text, "--signal")
    else:
        with pytest.raises(ValueError, match="^Invalid --signal specification$"):
            signals.parse_step_signal(text, "--signal")


def test_signal_number():
    assert signals.signal_number("sigusr2") == signal.SIGUSR2
    assert signals.signal_number("15") == 15
    assert signals.signal_number("BOGUS") is None


# --- begin times (Slurm's parse_time), local time -----------------------------------------


def _at(year, month, day, hour=0, minute=0, second=0):
    return float(time.mktime((year, month, day, hour, minute, second, 0, 0, -1)))


NOW = _at(2026, 11, 22, 2, 48, 30)  # a Sunday, like the captures


@pytest.mark.parametrize(
    "text, when",
    [
        ("16:00", _at(2026, 11, 22, 16)),
        ("01:00", _at(2026, 11, 23, 1)),
        ("02:48", _at(2026, 11, 23, 2, 48)),  # this very minute is tomorrow
        ("02:49:05", _at(2026, 11, 22, 2, 49, 5)),
        ("4:00PM", _at(2026, 11, 22, 16)),
        ("4:00 pm", _at(2026, 11, 22, 16)),
        ("12:30pm", _at(2026, 11, 22, 12, 30)),
        ("12:00am", _at(2026, 11, 23, 0)),
        ("now", NOW),
        ("now+1hour", NOW + 3600),
        ("now+60", NOW + 60),
        ("NOW + 2 days", NOW + 2 * 86400),
        ("now+1week", NOW + 7 * 86400),
        ("now-5minutes", NOW - 300),
        ("today", _at(2026, 11, 22)),
        ("tomorrow", _at(2026, 11, 23)),
        ("midnight", _at(2026, 11, 23)),
        ("noon", _at(2026, 11, 22, 12)),
        ("elevenses", _at(2026, 11, 22, 11)),
        ("fika", _at(2026, 11, 22, 15)),
        ("teatime", _at(2026, 11, 22, 16)),
        ("tomorrow noon", _at(2026, 11, 23, 12)),
        ("teatime tomorrow", _at(2026, 11, 23, 16)),
        ("1225", _at(2026, 12, 25)),
        ("0101", _at(2027, 1, 1)),
        ("1122", _at(2027, 11, 22)),  # today's date at 00:00 has passed
        ("12/25", _at(2026, 12, 25)),
        ("12/25/27", _at(2027, 12, 25)),
        ("12.25.28", _at(2028, 12, 25)),
        ("122529", _at(2029, 12, 25)),
        ("12/25-10:00", _at(2026, 12, 25, 10)),
        ("2027-03-15", _at(2027, 3, 15)),
        ("2027-03-15T10:30", _at(2027, 3, 15, 10, 30)),
        ("2027-03-15T10:30:15", _at(2027, 3, 15, 10, 30, 15)),
        ("2027-03-05 1:00pm", _at(2027, 3, 5, 13)),
        ("uts1800000000", 1800000000.0),
    ],
)
def test_begin(text, when):
    assert parse_begin(text, "--begin", NOW) == when


@pytest.mark.parametrize(
    "text",
    [
        "",
        "xx",
        "25:00",
        "12:60",
        "1:5",
        "2027-13-01",
        "13/01",
        "12/32",
        "now+",
        "now+5h",
        "nowx",
        "Today",  # 'T' is skipped as a separator, as in Slurm
        " now+1",  # Slurm's position bookkeeping loses its way after a leading blank
        "uts123",
        "uts1800000000x",
        "10:00xm",
        "13:00pm",
        "1225/2",
        "---",
    ],
)
def test_begin_invalid(text):
    with pytest.raises(ValueError, match="^Invalid --begin specification$"):
        parse_begin(text, "--begin", NOW)


# What parse_time printed first on the peer (Slurm 22.05.8) for each; None: no line
# (nothing was given, Slurm only says `Invalid --begin specification`).
@pytest.mark.parametrize(
    "text, pos",
    [
        ("notatime", 0),
        ("now+", 3),
        ("now+abc", 3),
        ("now+hour", 3),
        ("now+ ", 3),
        ("now+1x", 4),
        ("now+1hourx", 9),
        ("now+3hours x", 11),
        ("now x", 4),
        ("25:00", 0),
        ("12:00:99", 6),
        ("12:5", 4),
        ("16:00AM", 5),
        ("13:00pm", 5),
        ("12:00 xm", 6),
        ("2024-13-01", 5),
        ("2025-01-01Tfoo", 11),
        ("2027-01-01T25:00", 11),
        ("tomorrowx", 8),
        ("midnightx", 8),
        ("noon+1", 4),
        ("1", 1),
        ("2025", 0),
        ("12/40", 3),
        ("12/31/9", 7),
        ("01011999x", 6),
        ("0a", -1),
        ("abc123", 0),
        ("uts12", 0),
        ("uts1700000000x", 0),
        ("", None),
        ("  ", None),
        ("T", None),
    ],
)
def test_begin_invalid_says_where(text, pos):
    with pytest.raises(times.TimeSpecError) as info:
        parse_begin(text, "--begin", NOW)
    notes = () if pos is None else (f"Invalid time specification (pos={pos}): {text}",)
    assert (str(info.value), info.value.notes) == ("Invalid --begin specification", notes)


def test_begin_defaults_to_the_current_time():
    assert abs(parse_begin("now", "--begin") - time.time()) < 2


# --- every parser fails only with ValueError ------------------------------------------------

PARSERS = [
    parse_time,
    parse_mem,
    parse_nodes,
    parse_int,
    parse_bool_yes_no,
    parse_open_mode,
    parse_gres,
    parse_gpus,
    parse_array,
    parse_dependency,
    parse_export,
    parse_signal,
    lambda text, opt: parse_begin(text, opt, NOW),
]


@pytest.mark.parametrize("parser", PARSERS)
@given(text=st.text())
def test_parsers_raise_only_value_error(parser, text):
    try:
        parser(text, "--opt")
    except ValueError as error:
        assert str(error)


_numbers = st.text("0123456789:-+_*%,?kKmMgGtTbB@ ", max_size=12)


@pytest.mark.parametrize("parser", PARSERS)
@given(text=_numbers)
def test_parsers_raise_only_value_error_on_number_like_text(parser, text):
    try:
        parser(text, "--opt")
    except ValueError as error:
        assert str(error)
