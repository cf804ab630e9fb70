"""Print how fast `pattern ui`'s live preview answers, beside its parts done alone: the
preview of the MariaDB + ssh form (generate + diagram + the page's JSON) against
`generate_manifest` alone and `pattern diagram` alone on the same stack file; and what the
lazy import keeps out of every other command's start. A measurement, not a test.

    python benchmarks/ui_bench.py [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORM = {"name": "database", "kind": "Pod", "app_image": "mariadb:11", "app_command": "mariadbd",
        "s0-pattern": "ssh", "s0-p-user": "mysql", "s0-p-uid": "999", "s0-p-gid": "999",
        "s0-p-dataPath": "/var/lib/mysql", "s0-p-authorizedKeysSecret": "database-ssh-keys",
        "s0-v-data": "database-data"}


def median_ms(action: Callable[[], object], runs: int) -> float:
    action()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def cold_ms(code: str, runs: int) -> float:
    return median_ms(lambda: subprocess.run([sys.executable, "-c", code], check=True,
                                            capture_output=True), runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    from generator.commands import diagram
    from generator.generate import GenerateRequest, generate_manifest
    from generator.web.app import create_app

    form = FORM
    client = create_app().test_client()
    answer = client.post("/api/compose", data=form, headers={"Host": "127.0.0.1"}).get_json()
    assert answer["ok"], answer
    with tempfile.TemporaryDirectory() as folder:
        stack = Path(folder) / "stack.yaml"
        stack.write_text(answer["stack"], encoding="utf-8")
        preview = median_ms(lambda: client.post("/api/compose", data=form,
                                                headers={"Host": "127.0.0.1"}), args.runs)
        alone = median_ms(lambda: generate_manifest(GenerateRequest(file=str(stack))),
                          args.runs)
        drawn = median_ms(lambda: diagram(str(stack), "svg", None), args.runs)
    cli = cold_ms("import generator.cli", args.runs // 3 or 1)
    web = cold_ms("import generator.cli, generator.web.app", args.runs // 3 or 1)
    print(f"live preview (POST /api/compose, MariaDB + ssh)  {preview:7.1f} ms")
    print(f"  generate_manifest alone, same stack           {alone:7.1f} ms")
    print(f"  pattern diagram alone, same stack              {drawn:7.1f} ms")
    print(f"  the rest (forms, checks, stack file, JSON)     {preview - alone - drawn:7.1f} ms")
    print(f"import generator.cli (every command's start)     {cli:7.1f} ms")
    print(f"  ... with the web app too (what lazy saves)     {web:7.1f} ms")


if __name__ == "__main__":
    main()
