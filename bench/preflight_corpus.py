"""What the sky backend's pre-flight pass (backends/sky/preflight.py) says of each script of
examples/sbatch (and of a folder of scripts given), as a user alice submitting from
/home/alice/project with no file_mounts, volumes or module setups: how many scripts get which
finding. -v prints the findings, to judge by eye which are false. (tests/corpus keeps only
the public scripts' headers: their bodies are ours, so they say nothing here.)

    python bench/preflight_corpus.py [-v] [FOLDER]
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

from slurmsky.backends.sky import preflight
from slurmsky.config import Config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "sbatch"
ENV = {"HOME": "/home/alice", "USER": "alice"}


class Request:
    workdir = "/home/alice/project"

    def __init__(self, script: str):
        self.script = script


def main() -> None:
    kinds: collections.Counter = collections.Counter()
    scripts: collections.Counter = collections.Counter()
    folders = [Path(a) for a in sys.argv[1:] if a != "-v"] or [EXAMPLES]
    paths = sorted(p for folder in folders for p in folder.glob("*.sh"))
    for path in paths:
        found = preflight.findings(
            Request(path.read_text(errors="replace")), Config(path=""), "gpu", {}, ENV
        )
        seen = set()
        for line in found:
            kind = (
                "conda"
                if "conda environment" in line
                else "home"
                if "your home" in line
                else "path"
            )
            kinds[kind] += 1
            seen.add(kind)
            if "-v" in sys.argv:
                print(f"{path.name}: {line[:150]}")
        scripts.update(seen)
        scripts["any"] += bool(seen)
    print(f"{len(paths)} scripts; with a finding: {scripts['any']}")
    for kind in ("path", "home", "conda"):
        print(f"  {kind}: {kinds[kind]} findings in {scripts[kind]} scripts")


if __name__ == "__main__":
    main()
