"""Print what the data-loader costs for a 1 GiB dataset (a measurement, not a test).

A local nginx on 127.0.0.1 (Debian's, as the tests' source) serves --files files of random
bytes, --mib MiB in all, with directory listings and a SHA256SUMS. Each step is a process of
its own, timed, with its peak RSS from wait4 (the largest of the process and the children it
waited for: rclone or the loader's Python):

- baseline: a bare `rclone copy` of the same source into an empty folder (no checks, no publish)
- first load: the loader (`--one-time`), with the manifest checked, and without one
  (`rclone check` then: sizes only, since HTTP has no hashes)
- refresh, one file changed: only that file crosses the network; the rest is hard-linked
- refresh, nothing changed: a listing only

    python benchmarks/data_loader_bench.py [--files 64 --mib 1024]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "images" / "data-loader"
NGINX = """daemon off; pid {tmp}/nginx.pid; error_log stderr; user root;
events {{}}
http {{ access_log off; client_body_temp_path {tmp}/b; proxy_temp_path {tmp}/p;
  fastcgi_temp_path {tmp}/f; uwsgi_temp_path {tmp}/u; scgi_temp_path {tmp}/s;
  server {{ listen 127.0.0.1:{port}; root {data}; location / {{ autoindex on; }} }} }}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def step(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of one process and the children it waited for."""
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"{command[:3]} failed ({status})")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def write_dataset(folder: Path, files: int, mib: int) -> None:
    size = mib * 1024 * 1024 // files
    lines = []
    for i in range(files):
        data = os.urandom(size)
        (folder / f"part-{i:03d}.bin").write_bytes(data)
        lines.append(f"{hashlib.sha256(data).hexdigest()}  part-{i:03d}.bin")
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=64)
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    if not shutil.which("rclone") or not shutil.which("nginx"):
        print("needs rclone and nginx (scripts/setup-runtime.sh installs both)", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="dl-bench-", dir="/var/tmp"))
    data = work / "source"
    data.mkdir()
    os.chmod(work, 0o755)
    write_dataset(data, args.files, args.mib)
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(NGINX.format(tmp=work, port=port, data=data))
    nginx = subprocess.Popen(["nginx", "-c", str(conf)], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "PYTHONPATH": f"{IMAGE}{os.pathsep}{ROOT / 'images' / '_common'}",
           "RCLONE_CONFIG": "/dev/null", "RCLONE_CONFIG_SRC_TYPE": "http",
           "RCLONE_CONFIG_SRC_URL": url}
    loader = [sys.executable, str(IMAGE / "dataloader.py"), "--source", url, "--one-time",
              "true", "--interval", "1h", "--http-bind", "off",
              "--credentials-dir", str(work / "none")]
    rows: list[tuple[str, float, float]] = []
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        seconds, rss = step(["rclone", "copy", "--transfers", "4", "src:", str(work / "bare")],
                            env)
        rows.append(("baseline: bare rclone copy", seconds, rss))
        shutil.rmtree(work / "bare")
        with_sums = [*loader, "--root", str(work / "vol"), "--checksum-file", "SHA256SUMS"]
        rows.append(("first load, SHA256SUMS checked", *step(with_sums, env)))
        rows.append(("first load, rclone check (sizes)",
                     *step([*loader, "--root", str(work / "vol2")], env)))
        shutil.rmtree(work / "vol2")
        changed = data / "part-000.bin"
        changed.write_bytes(os.urandom(changed.stat().st_size))
        digest = hashlib.sha256(changed.read_bytes()).hexdigest()
        sums = (data / "SHA256SUMS").read_text().splitlines()
        sums[0] = f"{digest}  part-000.bin"
        (data / "SHA256SUMS").write_text("\n".join(sums) + "\n")
        rows.append(("refresh, one file changed", *step(with_sums, env)))
        rows.append(("refresh, nothing changed", *step(with_sums, env)))
    finally:
        nginx.terminate()
        nginx.wait()
        shutil.rmtree(work, ignore_errors=True)
    total = args.mib
    print(f"data-loader, {args.files} files, {total} MiB, HTTP from nginx on 127.0.0.1")
    print(f"{'step':36} {'seconds':>8} {'MiB/s':>8} {'peak RSS MiB':>13}")
    for name, seconds, rss in rows:
        rate = f"{total / seconds:8.1f}" if "first" in name or "baseline" in name else "       -"
        print(f"{name:36} {seconds:8.2f} {rate} {rss:13.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
