"""Print what the backup and log-rotate sidecars cost, measured inside their own images (the
restic and logrotate a pod runs): a measurement, not a test.

- backup: a volume of --files files, --mib MiB in all (random bytes, so nothing dedupes or
  compresses), snapshotted to a local repository: the first snapshot, then an incremental one
  after one file changed; wall time and restic's peak RSS (ru_maxrss) of each, beside the
  baseline of reading every file once (tar into a pipe).
- log-rotate: logrotate's CPU seconds (user + system) per rotation of one --log-mib MiB file,
  for copytruncate (it copies the file) and create (a rename), and the delayed gzip of it.

    python benchmarks/backup_rotate_bench.py [--files 10000 --mib 1024 --log-mib 100]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

BACKUP_IMAGE = "ghcr.io/sidecar-patterns/backup:0.3.3"
ROTATE_IMAGE = "ghcr.io/sidecar-patterns/log-rotate:0.2.3"

# Runs inside the image: each step a child process, measured by its own rusage (wait4).
MEASURE = """
import json, os, subprocess, sys, time
def step(name, command):
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, code, usage = os.wait4(child.pid, 0)  # this child's own usage and peak RSS
    assert code == 0, (name, code)
    return {"step": name, "seconds": round(time.perf_counter() - start, 2),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}
"""

BACKUP = MEASURE + """
files, mib = int(sys.argv[1]), int(sys.argv[2])
size = mib * 1024 * 1024 // files
for i in range(files):
    d = f'/data/d{i % 100}'
    os.makedirs(d, exist_ok=True)
    with open(f'{d}/f{i}', 'wb') as fh:
        fh.write(os.urandom(size))
os.environ.update(RESTIC_REPOSITORY='/repo', RESTIC_PASSWORD='bench', RESTIC_CACHE_DIR='/tmp/c')
# The baseline: reading every file once (tar into a pipe), what any backup must at least do.
out = [step('baseline: tar of the volume into a pipe', ['sh', '-c', 'tar -cf - /data | wc -c'])]
out.append(step('init', ['restic', '-q', 'init']))
out.append(step('first snapshot', ['restic', '-q', 'backup', '--host', 'bench', '/data']))
with open('/data/d0/f0', 'wb') as fh:
    fh.write(os.urandom(size))
out.append(step('incremental (1 file changed)',
                ['restic', '-q', 'backup', '--host', 'bench', '/data']))
print(json.dumps(out))
"""

ROTATE = MEASURE + """
mib = int(sys.argv[1])
out = []
for mode in ('copytruncate', 'create'):
    os.makedirs(f'/tmp/{mode}', exist_ok=True)
    conf = f'/tmp/{mode}.conf'
    with open(conf, 'w') as fh:
        fh.write(f'/tmp/{mode}/app.log {{\\n  size 1k\\n  rotate 3\\n  compress\\n'
                 f'  delaycompress\\n  {mode}\\n}}\\n')
    for turn in ('rotation', 'rotation + delayed gzip of the previous'):
        with open(f'/tmp/{mode}/app.log', 'w') as fh:  # log lines, as compressible as logs
            n = 0
            while fh.tell() < mib * 1024 * 1024:
                fh.write(''.join(f'2026-12-02T14:{n % 60:02d}:00Z INFO order {n + i} placed '
                                 f'by customer {(n + i) * 7919 % 100000}\\n'
                                 for i in range(1000)))
                n += 1000
        out.append(step(f'{mode}: {turn}', ['logrotate', '-s', f'/tmp/{mode}.state', conf]))
print(json.dumps(out))
"""


def run_in(image: str, script: str, *args: str, volumes: tuple[str, ...] = ()) -> list[dict]:
    mounts = [a for v in volumes for a in ("--mount", f"type=tmpfs,destination={v}")]
    proc = subprocess.run(["podman", "run", "--rm", "--read-only", "--tmpfs", "/tmp", *mounts,
                           "--entrypoint", "python3", image, "-c", script, *args],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{image}: {proc.stderr.strip()}")
    result: list[dict] = json.loads(proc.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--log-mib", type=int, default=100)
    args = parser.parse_args()
    rows = [("backup", r) for r in run_in(BACKUP_IMAGE, BACKUP, str(args.files), str(args.mib),
                                           volumes=("/data", "/repo"))]
    rows += [("log-rotate", r) for r in run_in(ROTATE_IMAGE, ROTATE, str(args.log_mib))]
    print(f"backup: {args.files} files, {args.mib} MiB; log-rotate: one {args.log_mib} MiB file")
    print("| sidecar | step | wall s | CPU s | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for sidecar, r in rows:
        print(f"| {sidecar} | {r['step']} | {r['seconds']} | {r['cpu_seconds']} | "
              f"{r['peak_rss_mib']} |")


if __name__ == "__main__":
    main()
