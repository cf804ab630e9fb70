"""`pattern run --wait` to Ready and `pattern down`, for the same pod on podman and on Docker,
side by side in one run.

The pod: a busybox httpd app with an httpGet readiness probe and a native file-server-like
sidecar with an exec readiness probe and a postStart hook, both leaving on SIGTERM (so `down`
measures the runner and the engine, not a grace period running out).

    python benchmarks/runtime_bench.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POD = "bench-runtime"
BUSYBOX = "localhost/busybox:1.35-static"
MANIFEST = f"""\
apiVersion: v1
kind: Pod
metadata: {{name: {POD}}}
spec:
  terminationGracePeriodSeconds: 30
  initContainers:
  - name: helper
    image: {BUSYBOX}
    restartPolicy: Always
    command: [sh, -c, 'trap "exit 0" TERM; touch /tmp/up; sleep 3600 & wait']
    readinessProbe: {{exec: {{command: [test, -f, /tmp/up]}}, periodSeconds: 1}}
    lifecycle: {{postStart: {{exec: {{command: [sh, -c, 'echo started > /tmp/hook']}}}}}}
  containers:
  - name: app
    image: {BUSYBOX}
    command: [sh, -c, 'echo ok > /tmp/index.html; trap "exit 0" TERM; httpd -f -p 8080 -h /tmp &
      wait']
    readinessProbe: {{httpGet: {{path: /index.html, port: 8080}}, periodSeconds: 1}}
"""


def _pattern(*args: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "generator", *args], capture_output=True,
                          text=True, env=env, check=False)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"pattern {' '.join(args)} failed: {done.stderr.strip()}")
    return took


def _answers(engine: str) -> bool:
    from generator.runner.engines import engine as named

    return named(engine).problem() is None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    engines = [e for e in ("podman", "docker") if _answers(e)]
    if not engines:
        raise SystemExit("no engine answers: bash scripts/setup-runtime.sh")
    with tempfile.TemporaryDirectory() as folder:
        manifest = Path(folder) / "pod.yaml"
        manifest.write_text(MANIFEST)
        env = {**os.environ, "SIDECAR_PATTERNS_STATE": str(Path(folder) / "state")}
        results: dict[str, tuple[list[float], list[float]]] = {}
        for engine in engines:
            ups, downs = [], []
            _pattern("run", str(manifest), "--wait", "--runtime", engine, env=env)  # warm-up
            _pattern("down", POD, env=env)
            for _ in range(rounds):
                ups.append(_pattern("run", str(manifest), "--wait", "--runtime", engine,
                                    env=env))
                downs.append(_pattern("down", POD, env=env))
            results[engine] = ups, downs
    print(f"pattern run --wait (to Ready) and pattern down, same pod, {rounds} rounds "
          f"(median, min-max), {os.cpu_count()} cores")
    print(f"{'engine':8} {'run --wait':>22} {'down':>22}")
    for engine, (ups, downs) in results.items():
        print(f"{engine:8} {_cell(ups):>22} {_cell(downs):>22}")


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


if __name__ == "__main__":
    main()
