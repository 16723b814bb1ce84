"""Parse + translate throughput over the example scripts (scripts/s on one core).

Run: python bench/parse_translate.py [seconds]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slurmsky.config import Config  # noqa: E402
from slurmsky.request import build_batch_request, parse_command_line  # noqa: E402
from slurmsky.translate import translate  # noqa: E402


def throughput(budget: float) -> float:
    """Scripts parsed and translated per second, over `budget` seconds."""
    cfg = Config(path="bench", partitions={"gpu": {"accelerators": ["A100"]}, "cpu": {"default": True}})
    scripts = [(p.name, p.read_bytes()) for p in sorted((ROOT / "examples/sbatch").glob("*.sh"))]
    start, done = time.perf_counter(), 0
    while time.perf_counter() - start < budget:
        for name, text in scripts:
            argv = ["-p", "gpu"] if b"gpu" in text else []
            req = build_batch_request(parse_command_line("sbatch", argv), {}, "/tmp", lambda t=text: t)
            translate(req, cfg)
            done += 1
    return done / (time.perf_counter() - start)


def main() -> None:
    budget = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    print(f"parse+translate: {throughput(budget):,.0f} scripts/s over the examples (one core)")


if __name__ == "__main__":
    main()
