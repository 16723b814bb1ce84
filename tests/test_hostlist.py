"""Hostlists and count lists against real Slurm 22.05 (the scontrol captures in
shared/reference/slurm-captures) and against python-hostlist as an oracle."""

from collections import Counter

import hostlist as pyhostlist
import pytest
from hypothesis import given
from hypothesis import strategies as st

from slurmsky.runtime.hostlist import compress, compress_counts, expand, expand_counts


@pytest.mark.parametrize(
    "text, names",
    [
        # scontrol-show-hostnames.txt
        ("node[1-3,5]", ["node1", "node2", "node3", "node5"]),
        # scontrol-show-hostnames-multi.txt
        ("node[01-03],gpu[1-2],login", ["node01", "node02", "node03", "gpu1", "gpu2", "login"]),
        # scontrol-show-hostnames-env.txt, env-b*.txt
        ("node[3-4]", ["node3", "node4"]),
        ("node1", ["node1"]),
        ("node[01-04,07],gpu1", ["node01", "node02", "node03", "node04", "node07", "gpu1"]),
        ("rack[1-2]-node[1-2]", ["rack1-node1", "rack1-node2", "rack2-node1", "rack2-node2"]),
        # Slurm's own nesting order for a third bracket (_push_range_list recursion)
        (
            "a[1-2]b[3-4]c[5-6]",
            ["a1b3c5", "a1b3c6", "a2b3c5", "a2b3c6", "a1b4c5", "a1b4c6", "a2b4c5", "a2b4c6"],
        ),
        ("n[8-10]", ["n8", "n9", "n10"]),
        ("n[098-100]", ["n098", "n099", "n100"]),
        ("n[5-]", ["n5"]),
        ("n1,n1", ["n1", "n1"]),
        ("a b\tc,,d", ["a", "b", "c", "d"]),
        ("[1-2]", ["1", "2"]),
        ("node[1-", ["node[1-]"]),  # Slurm tacks the missing "]" on
        ("", []),
    ],
)
def test_expand(text, names):
    assert expand(text) == names


@pytest.mark.parametrize(
    "text", ["node[1-3]x", "n[3-1]", "n[a]", "n[1,,2]", "n[-1]", "n[1-2]b[x]", "n[0-70000]"]
)
def test_expand_invalid(text):
    with pytest.raises(ValueError, match=r"^Invalid hostlist: "):
        expand(text)


@pytest.mark.parametrize(
    "names, ranged",
    [
        # scontrol-show-hostlist.txt
        ("node1,node2,node3", "node[1-3]"),
        # scontrol-show-hostlist-mixed.txt: input order kept, only neighbours merge
        ("node3,node1,node2,node10,gpu1,node02", "node[3,1-2,10],gpu1,node02"),
        # env-b*.txt SLURM_JOB_NODELIST
        ("node1,node2", "node[1-2]"),
        ("node1", "node1"),
        ("node01,node02,node03,gpu1,gpu2,login", "node[01-03],gpu[1-2],login"),
        ("n9,n10", "n[9-10]"),
        ("n1,n02", "n[1,02]"),
        ("n99,n100", "n[99-100]"),
        ("login,login", "login,login"),
        ("", ""),
    ],
)
def test_compress(names, ranged):
    assert compress(names.split(",") if names else []) == ranged


@pytest.mark.parametrize(
    "names, ranged",
    [
        # scontrol-show-hostlistsorted.txt
        ("node3,node1,node2,node10,gpu1", "gpu1,node[1-3,10]"),
        ("rack10-n1,rack2-n1", "rack2-n1,rack10-n1"),  # prefixes compare naturally
        ("node1,node", "node,node1"),
    ],
)
def test_compress_sorted(names, ranged):
    assert compress(names.split(","), sort=True) == ranged


@pytest.mark.parametrize(
    "counts, text",
    [
        ([2, 2], "2(x2)"),  # env-b SLURM_TASKS_PER_NODE
        ([1, 1], "1(x2)"),
        ([1], "1"),
        ([2, 2, 1], "2(x2),1"),
        ([2, 2, 2, 1], "2(x3),1"),
        ([1, 2, 1], "1,2,1"),
        ([], ""),
    ],
)
def test_counts(counts, text):
    assert compress_counts(counts) == text
    assert expand_counts(text) == counts


@pytest.mark.parametrize("text", ["x", "2(x)", "2(3)", "2,,1", "-1"])
def test_expand_counts_invalid(text):
    with pytest.raises(ValueError, match="^Invalid count list: "):
        expand_counts(text)


_prefixes = st.sampled_from(["n", "node", "gpu", "a", "ab", "rack1-n", ""])
_names = st.one_of(
    st.builds(lambda p, n: p + str(n), _prefixes, st.integers(0, 120)),
    st.builds(
        lambda p, n, w: p + "%0*d" % (w, n), _prefixes, st.integers(0, 120), st.integers(1, 4)
    ),
    st.sampled_from(["login", "gpu", "n"]),
)


@given(st.lists(_names, max_size=30))
def test_expand_inverts_compress(names):
    assert expand(compress(names)) == names


@given(st.lists(_names, max_size=30))
def test_sorted_compress_keeps_the_names(names):
    ranged = compress(names, sort=True)
    assert Counter(expand(ranged)) == Counter(names)
    assert compress(expand(ranged), sort=True) == ranged


# python-hostlist groups and sorts like Slurm's hostlistsorted for names with one
# numeric suffix, alphabetic prefixes and one width per prefix.
_oracle_names = st.one_of(
    st.builds(
        lambda p, n: p + str(n), st.sampled_from(["n", "node", "gpu", "a"]), st.integers(0, 150)
    ),
    st.builds(lambda p, n: p + "%03d" % n, st.sampled_from(["pad", "z"]), st.integers(0, 150)),
    st.sampled_from(["login", "gpu", "nodex"]),
)


@given(st.lists(_oracle_names, unique=True, max_size=40))
def test_sorted_compress_matches_python_hostlist(names):
    assert compress(names, sort=True) == pyhostlist.collect_hostlist(names)


_range = st.builds(
    lambda lo, n, w: ("%0*d" % (w, lo)) + ("-%d" % (lo + n) if n else ""),
    st.integers(0, 50),
    st.integers(0, 12),
    st.integers(1, 3),
)
_bracket = st.lists(_range, min_size=1, max_size=3).map(lambda r: "[%s]" % ",".join(r))
_item = st.one_of(
    _names,
    st.builds(lambda p, b: p + b, _prefixes, _bracket),
    st.builds(
        lambda p, b, q, c: p + b + q + c,
        st.sampled_from(["rack", "r", ""]),
        _bracket,
        st.sampled_from(["-n", "x", "."]),
        _bracket,
    ),
)


@given(st.lists(_item, min_size=1, max_size=6))
def test_expand_matches_python_hostlist(items):
    text = ",".join(items)
    assert expand(text) == pyhostlist.expand_hostlist(text, allow_duplicates=True)


@given(st.lists(st.integers(0, 5), max_size=20))
def test_counts_round_trip(counts):
    assert expand_counts(compress_counts(counts)) == counts


@given(st.text())
def test_expand_raises_only_value_error(text):
    try:
        expand(text)
    except ValueError:
        pass


@given(st.lists(st.text(st.characters(blacklist_characters="[], \t"), min_size=1)))
def test_expand_inverts_compress_for_any_plain_names(names):
    assert expand(compress(names)) == names
