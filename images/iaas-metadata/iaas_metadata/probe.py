"""Exec probe: `python3 -m iaas_metadata.probe [/readyz]` exits 0 when the endpoint says 200.

Kubelet httpGet probes dial the pod IP, which a localhost-only listener never sees; an exec
probe runs inside the container and dials the configured --listen address instead.
"""

from __future__ import annotations

import http.client
import os
import sys

from sidecar_common import env_twin

from iaas_metadata.config import ENV_PREFIX, split_listen


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/readyz"
    host, port = split_listen(os.environ.get(env_twin(ENV_PREFIX, "--listen"), "127.0.0.1:8733"))
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    conn = http.client.HTTPConnection(host, port, timeout=2)
    try:
        conn.request("GET", path, headers={"Host": "localhost"})
        response = conn.getresponse()
        print(response.read().decode().strip())
        return 0 if response.status == 200 else 1
    except OSError as err:
        print(f"probe failed: {err}", file=sys.stderr)
        return 1
    finally:
        conn.close()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
