"""Print how fast `pattern` starts: the cold-process time of `pattern list`, `pattern --help`
and `pattern generate`, each beside the bare-Python floor (`python -c 'import yaml'`) with
the goal of issue 21 (list/--help at most 2x the floor, generate at most 3x), and pods
generated per second in one process. A measurement, not a test.

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


def _once(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one fresh process."""
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode})")
    return wall, usage.ru_utime + usage.ru_stime


def cold(command: list[str], runs: int) -> tuple[float, float]:
    """Median wall and CPU time of a fresh process, after one warm-up for the page cache. CPU
    time is the steadier figure on a shared machine (other work stretches wall time)."""
    # Bytecode allowed, as after `pip install` (which compiles it); the warm-up writes it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["SIDECAR_PATTERNS_CATALOGUE"] = str(CATALOGUE)
    _once(command, env)
    times = [_once(command, env) for _ in range(runs)]
    return (statistics.median(t[0] for t in times), statistics.median(t[1] for t in times))


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
    pattern = [sys.executable, "-m", "generator"]
    generate = [*pattern, "generate", "-f", str(STACK)]
    floor, floor_cpu = cold([sys.executable, "-c", "import yaml"], args.runs)
    print(f"{'command (cold process, median of ' + str(args.runs) + ')':38} {'wall ms':>8} "
          f"{'x floor':>8} {'CPU ms':>8} {'x floor':>8}  goal")
    print(f"{'bare python -c import yaml':38} {floor * 1000:8.1f} {1:8.1f} "
          f"{floor_cpu * 1000:8.1f} {1:8.1f}")
    for label, command, goal in (
            ("pattern list", [*pattern, "list"], 2),
            ("pattern --help", [*pattern, "--help"], 2),
            ("pattern generate (3 sidecars)", generate, 3),
            ("pattern generate --no-validate", [*generate, "--no-validate"], 3)):
        took, cpu = cold(command, args.runs)
        print(f"{label:38} {took * 1000:8.1f} {took / floor:8.1f} {cpu * 1000:8.1f} "
              f"{cpu / floor_cpu:8.1f}  <= {goal}x")
    print(f"pods/s in one process (validated)  {in_process(3, True):7.0f}")
    print(f"pods/s in one process (no schema)  {in_process(3, False):7.0f}")


if __name__ == "__main__":
    main()
