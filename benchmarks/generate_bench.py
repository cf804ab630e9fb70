"""Print how fast `pattern generate` is: cold-process time against the bare-Python floor,
and pods generated per second in one process. A measurement, not a test.

    python benchmarks/generate_bench.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STACK = Path(__file__).resolve().parent / "three-sidecars.stack.yaml"
CATALOGUE = ROOT / "tests" / "fixtures" / "patterns"


def cold(command: list[str], runs: int) -> float:
    """Median wall time of a fresh process, after one warm-up for the page cache."""
    # Bytecode allowed, as after `pip install` (which compiles it); the warm-up writes it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["SIDECAR_PATTERNS_CATALOGUE"] = str(CATALOGUE)
    subprocess.run(command, env=env, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def in_process(seconds: float, validate: bool) -> float:
    from generator.generate import GenerateRequest, generate_manifest

    request = GenerateRequest(file=str(STACK), catalogue=CATALOGUE, validate=validate)
    generate_manifest(request)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        generate_manifest(request)
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    pattern = [sys.executable, "-m", "generator", "generate", "-f", str(STACK)]
    floor = cold([sys.executable, "-c", "import yaml"], args.runs)
    full = cold(pattern, args.runs)
    quick = cold([*pattern, "--no-validate"], args.runs)
    print(f"bare python -c 'import yaml'       {floor * 1000:7.1f} ms")
    print(f"pattern generate (3 sidecars)      {full * 1000:7.1f} ms  {full / floor:4.1f}x floor")
    print(f"  ... --no-validate                {quick * 1000:7.1f} ms  {quick / floor:4.1f}x floor")
    print(f"pods/s in one process (validated)  {in_process(3, True):7.0f}")
    print(f"pods/s in one process (no schema)  {in_process(3, False):7.0f}")


if __name__ == "__main__":
    main()
