"""HTTP log sink for the log-collector tests: records every JSON record it is sent.

Accepts POST bodies that are a JSON array (syslog-ng ``http()`` with ``[`` ``,`` ``]`` framing)
or Elasticsearch ``_bulk`` NDJSON (action line, then document line). Each record is appended as
one JSON line (with the request's path and Authorization header) to the output file *before*
the response is sent, so a 200 means "stored".
Stdlib only: it runs on the host or inside ``localhost/python3-debian:3.11-bookworm``.

Usage: python3 http_sink.py --port 23002 --out /out/http.jsonl
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar


def parse_records(body: bytes, path: str) -> list[Any]:
    """Return the documents in a request body: a JSON array, or the sources of a _bulk body."""
    if path.rstrip("/").endswith("_bulk"):
        lines = [line for line in body.decode("utf-8").split("\n") if line.strip()]
        # _bulk alternates an action line ({"index": ...}) and the document it applies to.
        return [json.loads(line) for line in lines[1::2]]
    parsed = json.loads(body)
    return parsed if isinstance(parsed, list) else [parsed]


class SinkHandler(BaseHTTPRequestHandler):
    """Stores each POSTed record; answers like Elasticsearch for _bulk."""

    out_path: ClassVar[Path]
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        try:
            records = parse_records(body, self.path)
        except (ValueError, UnicodeDecodeError) as exc:
            self._reply(400, {"error": f"bad body: {exc}"})
            return
        auth = self.headers.get("Authorization")
        with self.out_path.open("a", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps({"auth": auth, "path": self.path, "record": record}) + "\n")
        self._reply(200, {"errors": False, "items": [], "took": 0})

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        # One write per response: separate header/body writes meet Nagle + delayed ACK.
        head = (
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Bad Request'}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        ).encode()
        self.wfile.write(head + data)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log."""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=23002)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    SinkHandler.out_path = args.out
    server = HTTPServer((args.host, args.port), SinkHandler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"http_sink listening on {args.host}:{args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
