"""The sky backend's workdir upload: credentials stay home, by SkyPilot's own rules (its
get_excluded_files for the zip upload, its rsync filter for the sync), a size cap, what was
left out said once; translate and --test-only show what would go up."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from slurmsky.backends.sky import BACKEND, upload
from slurmsky.config import Config
from slurmsky.core import planning
from slurmsky.errors import SlurmError
from slurmsky.parse.request import build_batch_request, parse_command_line

ROOT = Path(__file__).resolve().parent.parent
sky = pytest.importorskip("sky")
from sky.data import storage_utils  # noqa: E402
from sky.utils import command_runner  # noqa: E402

SECRETS = [".env", ".aws/credentials", ".netrc", ".ssh/id_ed25519", "deep/er/server.pem"]
OTHERS = ["main.py", "data/input.csv", "deep/er/notes.txt"]


def project(root: Path) -> Path:
    for rel in SECRETS + OTHERS:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"content of {rel}\n")
    return root


def submitted(root: Path, capsys, cfg: Config | None = None) -> str:
    """What sbatch does for the sky backend before storing the job; its stderr."""
    req = build_batch_request(
        parse_command_line("sbatch", ["--wrap", "true"]), {}, str(root), lambda: b""
    )
    cfg = cfg or Config(path="cfg.yaml", backend="sky")
    plan = planning.build(req, cfg, BACKEND, job_id=7)
    for line in plan.warnings + tuple(BACKEND.admit(plan, cfg)):  # as core.submit.store
        sys.stderr.write(line + "\n")
    return capsys.readouterr().err


def skypilot_zips(root: Path) -> set[str]:
    """The files SkyPilot's zip upload (API server) takes, by its own get_excluded_files."""
    excluded = {os.path.join(root, f.rstrip("/")) for f in storage_utils.get_excluded_files(root)}
    taken = set()
    for top, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if os.path.join(top, d) not in excluded]
        taken |= {
            os.path.relpath(os.path.join(top, f), root)
            for f in files
            if os.path.join(top, f) not in excluded
        }
    return taken


def skypilot_rsyncs(root: Path, tmp_path: Path) -> set[str]:
    """The files SkyPilot's rsync of a workdir takes, with its own filter options."""
    target = tmp_path / "rsynced"
    flt = (
        command_runner.RSYNC_FILTER_SKYIGNORE
        if (root / ".skyignore").exists()
        else command_runner.RSYNC_FILTER_GITIGNORE
    )
    subprocess.run(f"rsync -a {flt} {root}/ {target}/", shell=True, check=True)
    return {
        os.path.relpath(os.path.join(top, f), target)
        for top, _, files in os.walk(target)
        for f in files
    }


def test_before_skypilot_uploaded_every_credential(tmp_path):
    """The bug: SkyPilot's own rules leave out none of them."""
    root = project(tmp_path / "p")
    assert set(SECRETS) <= skypilot_zips(root)


def test_credentials_stay_home_by_skypilots_own_rules(tmp_path, capsys):
    root = project(tmp_path / "p")
    err = submitted(root, capsys)
    assert err == (
        f"sbatch: warning: credentials stay home (left out of the upload of {root}): "
        ".aws/ .env .netrc .ssh/ deep/er/server.pem\n"
    )
    expected = set(OTHERS) | {".skyignore"}
    assert skypilot_zips(root) == expected
    assert skypilot_rsyncs(root, tmp_path) == expected
    again = submitted(root, capsys)  # the block is rewritten, not added twice
    assert again == err
    assert (root / ".skyignore").read_text().count(upload.BEGIN) == 1


def test_a_users_skyignore_keeps_its_lines_and_gets_the_block(tmp_path, capsys):
    root = project(tmp_path / "p")
    (root / ".skyignore").write_text("data\n")
    submitted(root, capsys)
    text = (root / ".skyignore").read_text()
    assert text.startswith("data\n" + upload.BEGIN + "\n")
    assert skypilot_zips(root) == {"main.py", "deep/er/notes.txt", ".skyignore"}
    assert skypilot_rsyncs(root, tmp_path) == {"main.py", "deep/er/notes.txt", ".skyignore"}


def test_in_a_git_work_tree_what_git_ignores_stays_ignored(tmp_path, capsys):
    root = project(tmp_path / "p")
    (root / ".gitignore").write_text("data/\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    submitted(root, capsys)
    expected = {"main.py", "deep/er/notes.txt", ".skyignore", ".gitignore"}
    assert {p for p in skypilot_zips(root) if not p.startswith(".git/")} == expected


def test_fifos_sockets_and_the_state_stay_home_and_skypilots_zip_ends(
    tmp_path, capsys, monkeypatch
):
    """A FIFO under the workdir (slurmsky's own agent.fifo, where the state directory lies
    there) held SkyPilot's zip upload for ever: it read the FIFO. FIFOs, sockets and the state
    directory go into the block, unsaid; SkyPilot's zip (run in a process that must end) and
    rsync take none of them."""
    import socket

    root = tmp_path / "p"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.py").write_text("x\n")
    os.mkfifo(root / "src" / "pipe[1]")
    held = socket.socket(socket.AF_UNIX)
    held.bind(str(root / "sock"))
    home = root / "slurmsky-state"
    monkeypatch.setenv("SLURMSKY_HOME", str(home))
    home.mkdir()
    (home / "state.db").write_text("the queue\n")
    os.mkfifo(home / "agent.fifo")
    try:
        assert submitted(root, capsys) == ""
        text = (root / ".skyignore").read_text()
        assert text.splitlines()[-5:] == [
            "# no file to upload: FIFOs, sockets, devices, slurmsky's state",
            "/slurmsky-state",
            "/sock",
            "/src/pipe[[]1]",
            upload.END,
        ]
        assert skypilot_zips(root) == {"src/a.py", ".skyignore"}
        assert skypilot_rsyncs(root, tmp_path) == {"src/a.py", ".skyignore"}
        zipped = tmp_path / "up.zip"
        code = (
            "import sys\nfrom sky.data import storage_utils\n"
            "storage_utils.zip_files_and_folders([sys.argv[1]], sys.argv[2])"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(root), str(zipped)], timeout=120, capture_output=True
        )
        assert out.returncode == 0, out.stderr
        with zipfile.ZipFile(zipped) as z:
            taken = {n.split("/p/", 1)[1] for n in z.namelist() if not n.endswith("/")}
        assert taken == {"src/a.py", ".skyignore"}
        assert upload.plan(str(root), state_dir=str(home)).files == 2  # a.py, .skyignore
    finally:
        held.close()


def test_nothing_is_written_where_no_credential_is(tmp_path, capsys):
    root = tmp_path / "p"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.py").write_text("x\n")
    assert submitted(root, capsys) == ""
    assert sorted(os.listdir(root)) == ["src"]


def test_a_workdir_over_the_size_cap_is_refused_with_what_to_do(tmp_path, capsys):
    root = project(tmp_path / "p")
    with open(root / "data" / "big.bin", "wb") as fh:
        fh.truncate(2 * 1048576)  # sparse: its size counts, not its blocks
    cfg = Config(path="cfg.yaml", backend="sky", upload_max_mb=1)
    with pytest.raises(SlurmError) as caught:
        submitted(root, capsys, cfg)
    assert caught.value.lines == [
        f"the submit directory {root} would upload over 1 MB to the cloud (upload_max_mb); "
        "leave files out with a .skyignore there, submit from a smaller directory (-D), or "
        "raise upload_max_mb in cfg.yaml"
    ]
    (root / ".skyignore").write_text("big.bin\n")  # SkyPilot's rule: then it fits
    submitted(root, capsys, cfg)


def run(cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        HOME=str(cwd.parent),
        SLURMSKY_HOME=str(cwd.parent / "state"),
        SLURMSKY_CONFIG=str(cwd.parent / "none.yaml"),
        SLURMSKY_BACKEND="sky",
    )
    return subprocess.run(
        [sys.executable, str(ROOT / "bin" / argv[0]), *argv[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


SHOWN = (
    "uploads {root}: 3 files, 0.0 MB (SkyPilot's rules)\n"
    "left out (credentials stay home): .aws/ .env .netrc .ssh/ deep/er/server.pem\n"
)


def test_test_only_shows_what_would_go_up_and_writes_nothing(tmp_path):
    root = project(tmp_path / "p")
    out = run(root, "sbatch", "--test-only", "--wrap", "true")
    assert out.returncode == 0, out.stderr
    assert "".join(f"# {line}\n" for line in SHOWN.format(root=root).splitlines()) in out.stderr
    assert not (root / ".skyignore").exists()


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_translate_then_sky_jobs_launch_leaves_every_credential_home(tmp_path, fmt):
    """Issue 36: `slurmsky translate job.sh > task.yaml && sky jobs launch task.yaml` uploads
    the workdir by SkyPilot's own rules; translate writes sbatch's .skyignore block, so both
    of SkyPilot's uploads (zip and rsync) leave every credential home, and it says so."""
    root = project(tmp_path / "p")
    for rel in (".env.local", ".git-credentials", ".pgpass", ".pypirc", ".kube/config"):
        secret_file = root / rel
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        secret_file.write_text("secret\n")
    assert {".env.local", ".kube/config"} <= skypilot_zips(root)  # before: SkyPilot takes them
    out = run(root, "slurmsky", "translate", "--format", fmt, "--", "--wrap", "true")
    assert out.returncode == 0, out.stderr
    left = ".aws/ .env .env.local .git-credentials .kube/ .netrc .pgpass .pypirc .ssh/"
    assert f"left out (credentials stay home): {left} deep/er/server.pem\n" in out.stderr
    said = f"credentials stay home: {root}/.skyignore lists them for SkyPilot"
    assert said in (out.stdout.splitlines()[0] if fmt == "yaml" else out.stderr)
    expected = set(OTHERS) | {".skyignore"}
    assert skypilot_zips(root) == expected
    assert skypilot_rsyncs(root, tmp_path) == expected
    again = run(root, "slurmsky", "translate", "--", "--wrap", "true")  # rewritten, not added
    assert again.returncode == 0 and (root / ".skyignore").read_text().count(upload.BEGIN) == 1


def test_translate_writes_nothing_where_no_credential_is(tmp_path):
    root = tmp_path / "p"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.py").write_text("x\n")
    out = run(root, "slurmsky", "translate", "--", "--wrap", "true")
    assert out.returncode == 0 and "credentials stay home" not in out.stdout + out.stderr
    assert sorted(os.listdir(root)) == ["src"]
