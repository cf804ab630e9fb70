"""Images staged onto an empty base (images/_common/stage.py), beside their last image that
was not staged: size, idle RSS and start-to-ready (p50 over N starts), as one table.

    python benchmarks/images_bench.py [--rounds 10] [--runtime podman] [NAME...]

"before" is the image of the newest earlier VERSION that was not staged yet (from the git
history of images/NAME/VERSION and its Containerfile): the baseline issue 21 measured. When
it is not in the engine, it is built from that commit's sources, unless --no-build-before
(then the row says n/a). Ready = the image's health check (the one
tests/integration/staged_images/staged_cases.py names) exits 0; it is polled at once again,
so a start includes the engine's exec latency, as a startup probe sees it. Idle RSS is the sum
over the container's processes once it is ready and has had a second to settle. A function
image (the KRM function: its case has stdin) is run on its input: ready = it exited 0; no RSS.
Runs on its own (a few minutes; it is not part of the test command).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration" / "staged_images"))
from staged_cases import CASES, Case, staged  # noqa: E402

REGISTRY = "ghcr.io/sidecar-patterns"


def engine(runtime: str, *args: str, check: bool = True) -> str:
    proc = subprocess.run([runtime, *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise SystemExit(f"{runtime} {' '.join(args[:3])}: {proc.stderr.strip()[-400:]}")
    return proc.stdout.strip()


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                          check=True).stdout


def previous_version(name: str) -> tuple[str, str] | None:
    """(version, commit) of the newest VERSION before the current one whose image was not yet
    staged (issue 21's baseline), from git."""
    path = f"images/{name}/VERSION"
    current = (ROOT / path).read_text().strip()
    for commit in git("log", "--format=%H", "--", path).split():
        try:
            value = git("show", f"{commit}:{path}").strip()
            containerfile = git("show", f"{commit}:images/{name}/Containerfile")
        except subprocess.CalledProcessError:
            continue
        if value != current and "FROM scratch" not in containerfile:
            return value, commit
    return None


def build_before(runtime: str, name: str, version: str, commit: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, f"images/{name}",
                                  "images/_common"], capture_output=True, check=True).stdout
        subprocess.run(["tar", "x", "-C", tmp], input=archive, check=True)
        folder = Path(tmp) / "images"
        command = ["podman", "build", "--pull=never", "-q", "--build-arg", f"VERSION={version}",
                   "-t", f"{REGISTRY}/{name}:{version}"]
        if (folder / "_common").is_dir():
            command += ["--build-context", f"common={folder / '_common'}"]
        subprocess.run([*command, str(folder / name)], check=True, capture_output=True)
    if runtime != "podman":
        save = subprocess.Popen(["podman", "save", f"{REGISTRY}/{name}:{version}"],
                                stdout=subprocess.PIPE)
        subprocess.run([runtime, "load"], stdin=save.stdout, check=True, capture_output=True)
        save.wait()


def size_mb(runtime: str, ref: str) -> float:
    return int(engine(runtime, "image", "inspect", "--format", "{{.Size}}", ref)) / 1e6


def tree_rss_kib(pid: int) -> int:
    """VmRSS of `pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def one_start(runtime: str, ref: str, case: Case, measure_rss: bool) -> tuple[float, int]:
    name = f"bench-images-{uuid.uuid4().hex[:8]}"
    if case.stdin:  # a function: ready = it ran on its input and exited 0 (no idle RSS)
        began = time.monotonic()
        ran = subprocess.run([runtime, "run", "--rm", "-i", "--network", "none", "--read-only",
                              "--tmpfs", "/tmp", ref, *case.args], input=case.stdin,
                             capture_output=True, text=True, check=False)
        if ran.returncode != 0:
            raise SystemExit(f"{ref} failed on its input: {ran.stderr.strip()[-400:]}")
        return time.monotonic() - began, 0
    with tempfile.TemporaryDirectory() as folder:
        options = case.options(Path(folder))
        began = time.monotonic()
        engine(runtime, "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp",
               *options, ref, *case.args)
        try:
            return ready_and_rss(runtime, name, ref, case, began, measure_rss)
        finally:
            # docker knows no -t (and then removes nothing); podman waits without it
            engine(runtime, "rm", "-f", *(["-t", "0"] if runtime == "podman" else []), name,
                   check=False)


def ready_and_rss(runtime: str, name: str, ref: str, case: Case, began: float,
                  measure_rss: bool) -> tuple[float, int]:
    deadline = began + 60
    while subprocess.run([runtime, "exec", name, *case.health], capture_output=True,
                         check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise SystemExit(f"{ref} not ready in 60 s: {engine(runtime, 'logs', name)}")
    ready = time.monotonic() - began
    rss = 0
    if measure_rss:
        time.sleep(1)  # idle: let start-up garbage settle before sampling
        rss = tree_rss_kib(int(engine(runtime, "inspect", "--format", "{{.State.Pid}}", name)))
    return ready, rss


def measure(runtime: str, ref: str, case: Case, rounds: int) -> tuple[float, float]:
    """(idle RSS MiB, start-to-ready p50 ms)."""
    starts, rss = [], 0
    for index in range(rounds):
        ready, sample = one_start(runtime, ref, case, measure_rss=index == 0)
        starts.append(ready)
        rss = rss or sample
    return rss / 1024, statistics.median(starts) * 1000


def mib(rss: float) -> str:
    return f"{rss:.1f}" if rss else "n/a (runs once)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="images (default: every staged one)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--runtime", default="podman", choices=["podman", "docker"])
    parser.add_argument("--no-build-before", action="store_true")
    args = parser.parse_args()
    if not shutil.which(args.runtime):
        raise SystemExit(f"{args.runtime} is not installed")
    names = args.names or staged()
    subprocess.run([str(ROOT / ".venv" / "bin" / "pattern"), "images", "build", "--runtime",
                    args.runtime, *names], check=True, capture_output=True)
    print(f"{args.runtime}, p50 of {args.rounds} starts; "
          "before = the last image that was not staged\n")
    print("| image | size MB before → after | idle RSS MiB before → after "
          "| start-to-ready p50 ms before → after |")
    print("| --- | --- | --- | --- |")
    for name in names:
        case = CASES[name]
        version = (ROOT / "images" / name / "VERSION").read_text().strip()
        after = f"{REGISTRY}/{name}:{version}"
        a_size = size_mb(args.runtime, after)
        a_rss, a_start = measure(args.runtime, after, case, args.rounds)
        before = previous_version(name)
        cells = ["n/a", "n/a", "n/a"]
        if before:
            ref = f"{REGISTRY}/{name}:{before[0]}"
            present = subprocess.run([args.runtime, "image", "inspect", ref],
                                     capture_output=True, check=False).returncode == 0
            if not present and not args.no_build_before:
                build_before(args.runtime, name, *before)
                present = True
            if present:
                b_rss, b_start = measure(args.runtime, ref, case, args.rounds)
                cells = [f"{size_mb(args.runtime, ref):.0f}", mib(b_rss), f"{b_start:.0f}"]
        label = f"{name} {before[0]} → {version}" if before else f"{name} {version}"
        print(f"| {label} | {cells[0]} → {a_size:.0f} | {cells[1]} → {mib(a_rss)} "
              f"| {cells[2]} → {a_start:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
