"""Print config-reloader's reload latency: from a ConfigMap change to the app serving the new
value, in the nginx example's pod (signal mode, `nginx -t` first): a measurement, not a test.

Each round changes the value nginx returns and polls http://127.0.0.1:PORT/ every 5 ms until
it is served. Side by side:

- `pattern apply` end to end: the user's path (a new `pattern` process writes the ConfigMap
  the kubelet's way), then the sidecar notices the `..data` swap, hashes, runs `nginx -t`,
  sends SIGHUP, and nginx reloads;
- the same change written in-process (the runner's atomic writer, no CLI start): the sidecar
  and nginx alone;
- `pattern apply` alone: the process's own time (the local stand-in for the kubelet's delay,
  which on a cluster is up to about a minute plus the cache TTL).

Needs the config-reloader image and the example's nginx image (built here with podman).

    python benchmarks/config_reloader_bench.py [--rounds 20] [--runtime podman|docker]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generator import images  # noqa: E402
from generator.catalogue import Catalogue  # noqa: E402
from generator.compose import compose  # noqa: E402
from generator.runner import atomic, engines, state  # noqa: E402
from generator.runner.run import documents_to_plans, down, up  # noqa: E402
from generator.runner.runtime import copy_images  # noqa: E402
from generator.stack import stack_from_dict  # noqa: E402

EXAMPLE = ROOT / "patterns" / "config-reloader" / "examples"
NGINX_IMAGE = "localhost/sidecar-patterns-examples/nginx:1.22-bookworm"
CONF = (EXAMPLE / "nginx" / "nginx.conf").read_text()
POD = "cr-bench"


def config_map(value: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": POD},
            "data": {"nginx.conf": CONF.replace("version 1", value)}}


def served(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as reply:
            return str(reply.read().decode()).strip()
    except OSError:
        return ""


def until_served(port: int, value: str, start: float, timeout: float = 60) -> float:
    while served(port) != value:
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"nginx never served {value!r}")
        time.sleep(0.005)
    return time.perf_counter() - start


def summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (f"{name:<44} p50 {statistics.median(ordered) * 1000:7.0f} ms   "
            f"p95 {p95 * 1000:7.0f} ms   min {ordered[0] * 1000:6.0f}   "
            f"max {ordered[-1] * 1000:6.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--runtime", default="podman")
    parser.add_argument("--port", type=int, default=18399)
    args = parser.parse_args()
    runtime = engines.engine(args.runtime)
    images.build(["config-reloader"], registry=None, tag=None, push=False, quiet=True,
                 say=lambda _: None, runtime=runtime.name)
    subprocess.run(["podman", "build", "--pull=never", "-q", "-t", NGINX_IMAGE,
                    str(EXAMPLE / "nginx")], check=True, capture_output=True)
    if runtime.name != "podman" and not runtime.image_present(NGINX_IMAGE):
        copy_images([NGINX_IMAGE], engines.engine("podman"), runtime)
    stack = yaml.safe_load((EXAMPLE / "nginx.stack.yaml").read_text())
    stack["metadata"]["name"] = POD
    stack["spec"]["volumes"][0]["configMap"]["name"] = POD
    workload = compose(stack_from_dict(stack, "bench"), Catalogue(ROOT / "patterns"), [])
    plans = documents_to_plans([config_map("version 0"), *workload], {8080: args.port})
    up(plans, wait=True, timeout=180, replace=True, runtime=runtime)
    folder = state.root() / "files" / POD / "nginx-conf"
    by_apply, in_process, apply_alone = [], [], []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for i in range(1, args.rounds + 1):
                value = f"apply {i}"
                path = Path(scratch) / "cm.yaml"
                path.write_text(yaml.safe_dump(config_map(value)))
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "generator", "apply", str(path),
                                "--runtime", runtime.name], check=True, capture_output=True,
                               cwd=ROOT)
                apply_alone.append(time.perf_counter() - start)
                by_apply.append(until_served(args.port, value, start))
                value = f"direct {i}"
                start = time.perf_counter()
                atomic.write(folder, {"nginx.conf": (CONF.replace("version 1", value).encode(),
                                                     0o644)})
                in_process.append(until_served(args.port, value, start))
    finally:
        down(POD, grace=0)
    print(f"config-reloader reload latency, nginx example pod on {runtime.name}, "
          f"{args.rounds} rounds each:")
    print(summary("ConfigMap change (pattern apply) -> served", by_apply))
    print(summary("..data swap in-process -> served", in_process))
    print(summary("baseline: the pattern apply process alone", apply_alone))
    print("(a cluster's kubelet adds its own delay: up to about 1 min plus its cache TTL)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
