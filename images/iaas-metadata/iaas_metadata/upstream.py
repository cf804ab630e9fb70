"""HTTP to a metadata service: bounded timeouts and retries, never through a proxy."""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


class UpstreamError(Exception):
    """The metadata service did not answer (refused, reset, timed out) after all retries."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace").strip()

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass(frozen=True)
class Upstream:
    """One metadata endpoint. http.client ignores HTTP_PROXY on purpose: metadata services
    must be reached directly (Azure documents this; a proxy would also see tokens)."""

    base_url: str
    timeout: float = 1.0
    retries: int = 2
    backoff: float = 0.1

    def request(self, method: str, path: str, headers: dict[str, str] | None = None) -> Response:
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._once(method, path, headers or {})
            except (OSError, http.client.HTTPException) as err:
                last = err
                continue
            if response.status < 500:
                return response
            last = UpstreamError(f"HTTP {response.status}")
        raise UpstreamError(f"{method} {self.base_url}{path}: {last}")

    def _once(self, method: str, path: str, headers: dict[str, str]) -> Response:
        parts = urlsplit(self.base_url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80,
                                          timeout=self.timeout)
        try:
            conn.request(method, parts.path.rstrip("/") + path, headers=headers)
            raw = conn.getresponse()
            body = raw.read()
            return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, body)
        except TimeoutError as err:
            raise TimeoutError(f"no answer within {self.timeout}s") from err
        finally:
            conn.close()
