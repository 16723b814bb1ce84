"""User text reaches the job as data, never as shell: names, comments, --export values, paths
(--output/--error/--chdir), --wrap text and array specs, on the SkyPilot run command
(translate's and the sky executor's), in `slurmsky translate`'s YAML, and in a real local job."""

from __future__ import annotations

import json
import os

import yaml

from slurmsky.backends.sky.output import sky_run
from slurmsky.backends.sky.task import SPEC_EOF, translate
from slurmsky.config import Config
from slurmsky.parse.request import build_batch_request, parse_command_line

# Each would create a pwned* file if any layer ran it as shell.
EVIL = [
    "$(touch pwned1)",
    "`touch pwned2`",
    "a'; touch pwned3; '",
    'b"; touch pwned4; "',
    "x\ntouch pwned5",
    "; touch pwned6 #",
    SPEC_EOF,
    'c\\"$(touch pwned7)\\',
]


def _argv(text: str) -> list[str]:
    """sbatch options carrying `text` everywhere a user may put text, then the script."""
    return [
        "-J",
        text,
        "--comment",
        text,
        "--export",
        f"ALL,V={text}",
        "-o",
        f"{text}-%j.out",
        "-e",
        f"{text}-%j.err",
        "--chdir",
        f"dir-{text}",
        "job.sh",
        text,
    ]


def _spec_in(run: str) -> tuple[dict, str]:
    """The spec a run command writes through its quoted heredoc, and the shell around it."""
    head, body = run.split(f"<<'{SPEC_EOF}'\n", 1)
    spec_text, tail = body.split(f"\n{SPEC_EOF}\n", 1)
    return json.loads(spec_text), head + tail  # one line of JSON: only our marker ends it


def _assert_data(run: str, text: str) -> None:
    spec, shell = _spec_in(run)
    assert (spec["job_name"], spec["script_args"], spec["output"], spec["error"]) == (
        text,
        [text],
        f"{text}-%j.out",
        f"{text}-%j.err",
    )
    assert "pwned" not in shell


def _path(pattern: str, job_id: int) -> str:
    """Where Slurm puts an output pattern: a backslash turns expansion off (and is dropped)."""
    return pattern.replace("\\", "") if "\\" in pattern else pattern.replace("%j", str(job_id))


def test_sky_run_commands_quote_everything(tmp_path):
    """translate's task and the sky executor's per-launch run command both carry user text
    only inside the spec's quoted heredoc."""
    (tmp_path / "job.sh").write_text("#!/bin/bash\necho hi\n")
    for text in EVIL:
        (tmp_path / f"dir-{text}").mkdir()  # a local -D: uploaded as the workdir
        req = build_batch_request(
            parse_command_line("sbatch", _argv(text)), {}, str(tmp_path), lambda: b""
        )
        result = translate(req, Config(path="x"))
        _assert_data(result.task["run"], text)
        assert result.task["workdir"] == str(tmp_path / f"dir-{text}")
        assert result.task["envs"]["V"] == text
        node = dict(result.spec, environment=None)
        _assert_data(sky_run(node, workdir=None), text)
        _assert_data(sky_run(node, workdir=text), text)
        wrap = build_batch_request(
            parse_command_line("sbatch", ["--wrap", text]), {}, str(tmp_path), lambda: b""
        )
        spec, shell = _spec_in(translate(wrap, Config(path="x")).task["run"])
        assert spec["script"].endswith(f"\n{text}\n") and "pwned" not in shell


def test_translate_yaml_is_safe(cluster):
    """`slurmsky translate` prints YAML whose run command keeps the text as data."""
    cluster.script("job.sh", '#!/bin/bash\n#SBATCH --comment="$(touch pwned0)"\necho hi\n')
    for text in EVIL:
        (cluster.cwd / f"dir-{text}").mkdir()
        out = cluster.run("slurmsky", "translate", *_argv(text))
        assert out.returncode == 0, out.stderr
        task = yaml.safe_load(out.stdout)
        _assert_data(task["run"], text)
        assert task["envs"]["V"] == text
        assert set(task["name"]) <= set(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."
        )
    assert not list(cluster.cwd.rglob("pwned*"))


def test_local_job_sees_text_as_data(cluster):
    """A real job on the local backend: its name, --export value and arguments arrive as the
    exact bytes, its files land at the literal paths, squeue shows the comment verbatim, and
    no injected command ran."""
    cluster.script(
        "job.sh",
        '#!/bin/bash\nprintf "%s|" "$SLURM_JOB_NAME" "$V" "$@" "$PWD"\necho; echo err >&2\n',
    )
    ids = []
    for text in EVIL:
        (cluster.cwd / f"dir-{text}").mkdir()
        ids.append(cluster.sbatch(*_argv(text)))
    wrap = cluster.sbatch("-o", "wrap.log", "--wrap", "echo '$(touch pwned8)' `echo ok`")
    array = cluster.run("sbatch", "--array=1-2;touch pwned9", "job.sh")
    assert (array.returncode, array.stderr) == (
        1,
        "sbatch: error: Batch job submission failed: Invalid job array specification\n",
    )
    rows = cluster.wait_done(*ids, wrap)
    assert {r[1] for r in rows} == {"COMPLETED"}
    for text, job_id in zip(EVIL, ids):
        workdir = cluster.cwd / f"dir-{text}"
        out, err = (workdir / _path(f"{text}-%j.{ext}", job_id) for ext in ("out", "err"))
        assert (out.read_text(), err.read_text()) == (f"{text}|{text}|{text}|{workdir}|\n", "err\n")
        shown = cluster.run("squeue", "-t", "all", "-h", "-o", "%k", "-j", str(job_id))
        assert shown.stdout == text + "\n"
    assert (cluster.cwd / "wrap.log").read_text() == "$(touch pwned8) ok\n"
    assert not list(cluster.cwd.rglob("pwned*")) and not list(cluster.home.rglob("pwned*"))
    assert not [p for p in os.listdir("/tmp") if p.startswith("pwned")]
