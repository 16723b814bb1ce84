"""User text reaches the job as data, never as shell: names, comments, --export values, paths,
--wrap text, and the SkyPilot run command built from them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from slurmsky.config import Config
from slurmsky.request import build_batch_request, parse_command_line
from slurmsky.translate import SPEC_EOF, translate

ROOT = Path(__file__).resolve().parent.parent
EVIL = ["$(touch pwned1)", "`touch pwned2`", "a'; touch pwned3; '", 'b"; touch pwned4; "',
        "x\ntouch pwned5", "; touch pwned6 #", SPEC_EOF]


def test_sky_run_command_quotes_everything(tmp_path):
    for text in EVIL:
        script = f"#!/bin/bash\necho '{text}'\n"
        argv = ["-J", text, "--comment", text, "--export", f"ALL,V={text}", "-o", f"{text}-%j.out",
                "job.sh", text]
        (tmp_path / "job.sh").write_text(script)
        req = build_batch_request(parse_command_line("sbatch", argv), {}, str(tmp_path), lambda: b"")
        run = translate(req, Config(path="x")).task["run"]
        head, body = run.split(f"<<'{SPEC_EOF}'\n", 1)
        spec_text, tail = body.split(f"\n{SPEC_EOF}\n", 1)
        spec = json.loads(spec_text)  # one line of JSON: the heredoc ends only at our marker
        assert (spec["job_name"], spec["script_args"], spec["output"]) == (text, [text], f"{text}-%j.out")
        assert "touch" not in head + tail


def test_local_job_sees_text_as_data(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), SLURMSKY_HOME=str(tmp_path / "state"))
    sbatch = [sys.executable, str(ROOT / "bin/sbatch"), "--parsable"]
    printer = 'printf "%s|" "$SLURM_JOB_NAME" "$V" "$@"; echo'
    ids = []
    for n, text in enumerate(EVIL):
        (tmp_path / f"job{n}.sh").write_text(f"#!/bin/bash\n{printer}\n")
        out = subprocess.run(sbatch + ["-J", text, f"--export=ALL,V={text}", "-o", f"out{n}-%j.log",
                                       f"job{n}.sh", text], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        ids.append(int(out.stdout))
    wrap = subprocess.run(sbatch + ["-o", "wrap.log", "--wrap", "echo '$(touch pwned7)' `echo ok`"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert wrap.returncode == 0, wrap.stderr
    deadline = time.time() + 60
    logs = [tmp_path / f"out{n}-{i}.log" for n, i in enumerate(ids)] + [tmp_path / "wrap.log"]
    while time.time() < deadline and not all(p.exists() and p.read_text() for p in logs):
        time.sleep(0.2)
    for text, log in zip(EVIL, logs):
        assert log.read_text() == f"{text}|{text}|{text}|\n"
    assert (tmp_path / "wrap.log").read_text() == "$(touch pwned7) ok\n"
    assert not list(tmp_path.glob("pwned*"))
    subprocess.run([sys.executable, str(ROOT / "bin/slurmsky"), "agent", "stop"], env=env,
                   capture_output=True, timeout=60)
