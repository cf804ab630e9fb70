"""Run inside the ssh or ftp sidecar image: the image's own preparation from its environment
(what the rendered container gives it), then the daemon's own config test on what it wrote
(`sshd -t`, `proftpd -t`). Prints "ok" or "FAIL: why" and exits 0 either way."""

import os
import subprocess
import sys

program = sys.argv[1]  # ssh-sidecar or ftp-sidecar
sys.path.insert(0, f"/usr/local/lib/{program}")
module = __import__(program.replace("-", "_"))
try:
    argv, env = module.prepare(module.build_parser().parse_args([]), os.getuid(), os.getgid())
except Exception as error:  # the image refused the values: report it, as its start-up would
    print(f"FAIL: prepare: {error}")
    sys.exit(0)
test = [argv[0], "-t", *[a for a in argv[1:] if a not in ("-D", "-e", "--nodaemon")]]
proc = subprocess.run(test, env={**os.environ, **env}, capture_output=True, text=True)
print("ok" if proc.returncode == 0 else "FAIL: " + (proc.stderr + proc.stdout).strip()
      .replace("\n", " ")[:300])
