"""Exec probe for runtimes that cannot do httpGet probes (podman runs them with curl).

Usage: python3 -m gitsync.probe [healthz|readyz] [HOST:PORT]; exit 0 when the endpoint answers
200. Without HOST:PORT it reads GITSYNC_HTTP_BIND like the sidecar itself.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

from gitsync.config import ConfigError, parse_bind


def probe(endpoint: str, bind: str, timeout_s: float = 2.0) -> bool:
    address = parse_bind(bind)
    if address is None:
        raise ConfigError("the HTTP server is off (GITSYNC_HTTP_BIND=off): nothing to probe")
    host = "127.0.0.1" if address[0] in ("0.0.0.0", "") else address[0]
    try:
        with urllib.request.urlopen(f"http://{host}:{address[1]}/{endpoint}",
                                    timeout=timeout_s) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str]) -> int:
    endpoint = argv[0] if argv else "healthz"
    if endpoint not in ("healthz", "readyz"):
        print("usage: python3 -m gitsync.probe [healthz|readyz] [HOST:PORT]", file=sys.stderr)
        return 2
    bind = argv[1] if len(argv) > 1 else os.environ.get("GITSYNC_HTTP_BIND", "0.0.0.0:8729")
    try:
        return 0 if probe(endpoint, bind) else 1
    except ConfigError as exc:
        print(f"git-sync probe: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
