"""Output file patterns against real Slurm 22.05 (output-*.txt, sbatch-percent-a-nonarray.txt,
tool-dask-sbatch.txt, scontrol-show-job-array.txt) and slurmstepd's fname.c quirks."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slurmsky.runtime.filepattern import expand

JOB = dict(job_id=57, job_name="patjob", user="peeruser", node_name="vm")


@pytest.mark.parametrize(
    "pattern, fields, name",
    [
        # output-patterns.txt / output-files-listing.txt (job 57)
        ("pat-%x-%j-%u-%N-%n-%t-%%.out", {}, "pat-patjob-57-peeruser-vm-0-0-%.out"),
        # output-padding.txt (job 58)
        ("pad-%5j-%0j.out", {"job_id": 58}, "pad-00058-58.out"),
        # output-array-patterns.txt: array 59, task 2 ran as job 63, task 3 as job 59
        (
            "arr-%A_%a-%j-%3a.out",
            {"job_id": 63, "array_job_id": 59, "array_task_id": 2},
            "arr-59_2-63-002.out",
        ),
        (
            "arr-%A_%a-%j-%3a.out",
            {"job_id": 59, "array_job_id": 59, "array_task_id": 3},
            "arr-59_3-59-003.out",
        ),
        # output-array-default-error.txt: -e "%x-%A-%a.err", default -o slurm-%A_%a.out
        (
            "%x-%A-%a.err",
            {"job_id": 61, "job_name": "arrerr", "array_job_id": 60, "array_task_id": 4},
            "arrerr-60-4.err",
        ),
        (
            "slurm-%A_%a.out",
            {"job_id": 61, "array_job_id": 60, "array_task_id": 4},
            "slurm-60_4.out",
        ),
        # sbatch-percent-a-nonarray.txt
        ("na-%A-%a-%j.out", {"job_id": 9}, "na-9-4294967294-9.out"),
        # scontrol-show-job-array.txt: the pending array's own record
        ("slurm-%A_%a.out", {"job_id": 134}, "slurm-134_4294967294.out"),
        ("slurm-%j.out", {"job_id": 55}, "slurm-55.out"),
        # tool-dask-sbatch.txt: %J is the job id in the batch step, jobid.step in steps
        ("logs/dask-worker-%J.err", {"job_id": 9}, "logs/dask-worker-9.err"),
        ("%J-%s", {"step_id": 2}, "57.2-2"),
        ("%s", {}, "4294967291"),
        ("%n-%t-%N", {"node_id": 1, "task_id": 3, "node_name": "node2"}, "1-3-node2"),
        ("%12j", {}, "0000000057"),  # widths stop at 10
        ("%z-%5z-%12z", {}, "%z-5z-2z"),  # unknown letters: Slurm eats all but a width's last digit
        ("%5%j", {}, "557"),
        ("end%", {}, "end%"),
        ("end%7", {}, "end7"),
        ("%%j%%%j", {}, "%j%57"),
        ("no\\%j-%j", {}, "no%j-%j"),  # a backslash turns expansion off
    ],
)
def test_expand(pattern, fields, name):
    assert expand(pattern, **dict(JOB, **fields)) == name


@given(st.text())
def test_text_without_percent_or_backslash_is_kept(text):
    plain = text.replace("%", "").replace("\\", "")
    assert expand(plain, **JOB) == plain


@given(st.text())
def test_any_pattern_expands(text):
    assert isinstance(expand(text, **JOB), str)
