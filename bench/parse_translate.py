"""Parse + translate throughput over the example scripts and the batch scripts of the
compatibility suite's cases (scripts/s on one core).

Run: python bench/parse_translate.py [seconds]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slurmsky.backends.sky.task import translate  # noqa: E402
from slurmsky.config import Config  # noqa: E402
from slurmsky.errors import SlurmError  # noqa: E402
from slurmsky.parse.request import build_batch_request, parse_command_line  # noqa: E402

CFG = Config(path="bench", partitions={"gpu": {"accelerators": ["A100"]}, "cpu": {"default": True}})


def corpus() -> list[bytes]:
    """examples/sbatch and every batch script of tests/compat/cases that sbatch accepts."""
    import yaml

    scripts = [p.read_bytes() for p in sorted((ROOT / "examples/sbatch").glob("*.sh"))]
    for path in sorted((ROOT / "tests/compat/cases").glob("*.yaml")):
        for case in yaml.safe_load(path.read_text()):
            scripts += [
                text.encode()
                for text in (case.get("files") or {}).values()
                if text.startswith("#!")
            ]
    return [text for text in scripts if _accepted(text)]


def _one(text: bytes) -> None:
    argv = ["-p", "gpu"] if b"gpu" in text else []
    translate(
        build_batch_request(parse_command_line("sbatch", argv), {}, "/tmp", lambda: text), CFG
    )


def _accepted(text: bytes) -> bool:
    try:
        _one(text)
    except SlurmError:
        return False
    return True


def throughput(budget: float) -> tuple[float, int]:
    """Scripts parsed and translated per second over `budget` seconds, and the corpus size."""
    scripts = corpus()
    start, done = time.perf_counter(), 0
    while time.perf_counter() - start < budget:
        for text in scripts:
            _one(text)
            done += 1
    return done / (time.perf_counter() - start), len(scripts)


def main() -> None:
    budget = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    rate, size = throughput(budget)
    print(
        f"parse+translate: {rate:,.0f} scripts/s over {size} scripts (examples and compat "
        "cases; one core)"
    )


if __name__ == "__main__":
    main()
