"""sinfo as a subprocess, against the real-Slurm captures.

slurmsky's nodes are this machine's local nodes (127.0.0.1-4, this machine's CPUs and memory)
rather than the peer's node1-4 (4 CPUs, 4000 MB): those values are normalised; the layout,
headers, widths, grouping and states are compared byte for byte.
"""

from __future__ import annotations

import re

from captures import read_capture
from test_formats import NOW, check, world  # noqa: F401 (fixture)

# the peer's nodes have TmpDisk=0 (the local default is $TMPDIR's size)
PEER_PARTITIONS = (
    "partitions:\n  debug:\n    default: true\n    tmp_disk_per_node: 0\n"
    "  gpu: {tmp_disk_per_node: 0}\n"
)


def nodes_as_peer(text: str) -> str:
    """127.0.0.[1-4] -> node[1-4], so the peer's node names compare."""
    text = text.replace("127.0.0.[1-4]", "node[1-4]").replace("127.0.0.[1-2]", "node[1-2]")
    return re.sub(r"127\.0\.0\.(\d)", r"node\1", text)


def with_config(w, text: str) -> dict:
    path = w.home / "partitions.yaml"
    path.write_text(text)
    return {"SLURMSKY_CONFIG": str(path)}


def test_default_view_without_config(world):
    out = world.run("sinfo")
    assert out.stdout == (
        "PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST\n"
        "local*       up   infinite      4   idle 127.0.0.[1-4]\n"
    )
    assert (out.returncode, out.stderr) == (0, "")
    # operands are ignored (the peer: `sinfo foo bar -h -o %P` lists its partitions)
    out = world.run("sinfo", "foo", "bar", "-h", "-o", "%P")
    assert (out.returncode, out.stdout, out.stderr) == (0, "local*\n", "")


def test_default_view_with_partitions(world):
    env = with_config(world, PEER_PARTITIONS)
    out = world.run("sinfo", env=env)
    cap = read_capture("sinfo-default.txt")
    # every local partition holds all local nodes (the peer's gpu partition has two of four)
    assert nodes_as_peer(out.stdout).splitlines()[:2] == cap.stdout.splitlines()[:2]
    assert out.stdout.splitlines()[2] == "gpu          up   infinite      4   idle 127.0.0.[1-4]"
    summary = world.run("sinfo", "-s", env=env)
    assert (
        nodes_as_peer(summary.stdout).splitlines()[:2]
        == read_capture("sinfo-s.txt").stdout.splitlines()[:2]
    )


def test_format_and_node_long_views(world):
    env = with_config(world, PEER_PARTITIONS)
    out = world.run("sinfo", "-h", "-o", "%P|%a|%l|%D|%t|%N|%c|%m|%G", env=env)
    cap = read_capture("sinfo-format.txt").stdout.splitlines()
    line = re.sub(r"\|\d+\|\d+\|", "|4|4000|", nodes_as_peer(out.stdout.splitlines()[0]))
    assert line == "debug*|up|infinite|4|idle|node[1-4]|4|4000|(null)"
    # the peer's debug* splits in two by GRES (node[3-4] have GPUs); the other fields agree
    assert [cap[0].split("|")[i] for i in (0, 1, 2, 4, 8)] == [
        line.split("|")[i] for i in (0, 1, 2, 4, 8)
    ]
    longer = world.run("sinfo", "-N", "-l", env={**env, "SLURMSKY_NOW": repr(NOW)})
    ours = longer.stdout.splitlines()
    theirs = read_capture("sinfo-N-l.txt").stdout.splitlines()
    assert ours[0] == "Sun Nov 22 02:49:21 2026"
    assert ours[1] == theirs[1]
    # one line per node and partition, node by node
    assert [line.split()[0] + " " + line.split()[2] for line in ours[2:]] == [
        f"127.0.0.{n} {p}" for n in range(1, 5) for p in ("debug*", "gpu")
    ]
    # with the peer's 4 CPUs and 4000 MB, the line would be the capture's
    same_width = re.sub(r"127\.0\.0\.(\d)", lambda m: f"node{m.group(1)}    ", ours[2])
    peer = re.sub(r"idle \d+ +1:\d+:1 +\d+ ", "idle 4       1:4:1   4000 ", same_width)
    assert peer == theirs[2]


def test_busy_nodes_split_the_partition(world):
    world.add(5, state="RUNNING", nodelist="127.0.0.1", cpus_per_node=[1], start_time=NOW)
    world.add(
        6, state="RUNNING", nodelist="127.0.0.2", cpus_per_node=[512], num_cpus=512, start_time=NOW
    )
    out = world.run("sinfo", "-o", "%P %t %D %N")
    assert out.stdout.splitlines() == [
        "PARTITION STATE NODES NODELIST",
        "local* mix 1 127.0.0.1",
        "local* alloc 1 127.0.0.2",
        "local* idle 2 127.0.0.[3-4]",
    ]
    out = world.run("sinfo", "-h", "-t", "idle", "-o", "%N")
    assert out.stdout == "127.0.0.[3-4]\n"
    summary = world.run("sinfo", "-h", "-s")
    assert summary.stdout.split()[3] == "2/2/0/4"


def test_sky_backend_partitions_show_the_nodes_of_running_jobs(world):
    env = with_config(
        world,
        "backend: sky\npartitions:\n  a100:\n    default: true\n"
        "    max_time: '1-00:00:00'\n  cpu: {}\n",
    )
    world.add(
        5,
        state="RUNNING",
        partition="a100",
        nodelist="10.0.0.[1-2]",
        num_nodes=2,
        cpus_per_node=[8, 8],
        num_cpus=16,
        start_time=NOW,
    )
    out = world.run("sinfo", env=env)
    assert out.stdout == (
        "PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST\n"
        "a100*        up 1-00:00:00      2  alloc 10.0.0.[1-2]\n"
        "a100*        up 1-00:00:00      6  idle~ a100-[3-8]\n"
        "cpu          up   infinite      8  idle~ cpu-[1-8]\n"
    )


def test_options(world):
    check(world.run("sinfo", "--version"), "squeue-version.txt")
    assert world.run("sinfo", "-h").stdout.startswith("local*")
    assert world.run("sinfo", "-p", "nosuch", "-h").stdout == ""
    bad = world.run("sinfo", "--bogus")
    assert bad.returncode == 1 and "unrecognized option '--bogus'" in bad.stderr
    fields = world.run("sinfo", "-O", "partition:10,nodes:.6,statecompact")
    assert fields.stdout.splitlines()[1] == "local*         4idle                "


def test_node_view_and_an_empty_partition(world):
    """What the live peer printed (Slurm 22.05, `scontrol create PartitionName=emptyp`):
    `sinfo -N` is `%#N %.6D %#P %6t` (names as wide as the longest, at least 9; the state
    left-aligned), and a partition with no nodes counts none: `0/0/0/0`, `S:C:T` 0:0:0, and
    no line under `-N`.

        NODELIST   NODES PARTITION STATE
        node1          1    debug* mix
        emptyp       up   infinite          0/0/0/0
        emptyp|0/0/0/0|0/0/0/0|0/0|0|0|0:0:0|0|n/a||
    """
    out = world.run(
        "sinfo", "-N", env=with_config(world, "partitions:\n  debug: {default: true}\n")
    )
    assert out.stdout.splitlines()[:2] == [
        "NODELIST   NODES PARTITION STATE ",
        "127.0.0.1      1    debug* idle  ",
    ]
    # on the sky backend a pool partition whose pool is up with no workers has no nodes
    env = with_config(
        world,
        "backend: sky\npartitions:\n  debug: {default: true}\n  emptyp: {pool: {workers: 1}}\n",
    )
    world.state.mkdir(exist_ok=True)
    (world.state / "sky-pools.json").write_text(
        '{"pools": {"slurmsky-emptyp": {"status": "READY", "at": 1, "workers": []}}, "asked": {}}'
    )
    assert world.run("sinfo", "-N", "-p", "emptyp", env=env).stdout == (
        "NODELIST   NODES PARTITION STATE \n"
    )
    assert world.run("sinfo", "-s", "-h", "-p", "emptyp", env=env).stdout == (
        "emptyp       up   infinite          0/0/0/0 \n"
    )
    fields = "%P|%C|%F|%A|%D|%c|%z|%m|%t|%N|"
    assert world.run("sinfo", "-h", "-p", "emptyp", "-o", fields, env=env).stdout == (
        "emptyp|0/0/0/0|0/0/0/0|0/0|0|0|0:0:0|0|n/a||\n"
    )
    # a partition name longer than 9 widens the column, as `%#P` does
    env = with_config(world, "partitions:\n  averylongname: {default: true}\n")
    assert world.run("sinfo", env=env).stdout.splitlines() == [
        "PARTITION      AVAIL  TIMELIMIT  NODES  STATE NODELIST",
        "averylongname*    up   infinite      4   idle 127.0.0.[1-4]",
    ]
