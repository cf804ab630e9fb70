"""Detect the cloud, then keep a fresh snapshot; keep serving the last one when upstream blips."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from iaas_metadata.fields import Snapshot
from iaas_metadata.providers import Provider, ProviderError, safe_probe
from iaas_metadata.upstream import UpstreamError

log = logging.getLogger("iaas_metadata")


@dataclass
class Detection:
    provider: str | None = None
    reason: str = "not probed yet"
    probes: list[dict[str, Any]] = field(default_factory=list)


def detect(candidates: list[Provider]) -> tuple[Provider | None, Detection]:
    """Probe in order; the first cloud that answers as documented wins."""
    probes: list[dict[str, Any]] = []
    for candidate in candidates:
        ok, reason = safe_probe(candidate)
        probes.append({"provider": candidate.name, "matched": ok, "reason": reason})
        if ok:
            return candidate, Detection(candidate.name, reason, probes)
    return None, Detection(None, "no metadata service answered as documented", probes)


@dataclass
class State:
    snapshot: Snapshot | None = None
    fetched_at: float = 0.0  # monotonic
    last_error: str | None = None
    last_attempt: float = 0.0


class MetadataCache:
    """A background thread refreshes every `ttl` seconds; readers never wait on upstream."""

    def __init__(self, candidates: list[Provider], ttl: float, fallbacks: dict[str, str],
                 fixed: bool, rebuild: Callable[[str], Provider] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._candidates = candidates
        self._fixed = fixed
        self._ttl = ttl
        self._fallbacks = fallbacks
        self._clock = clock
        self._rebuild = rebuild
        self._lock = threading.Lock()
        self._state = State()
        self._stop = threading.Event()
        self.provider: Provider | None = candidates[0] if fixed else None
        self.detection = Detection(candidates[0].name, "set by --provider", []) if fixed \
            else Detection()

    def refresh_once(self) -> bool:
        """One attempt: detect if needed, then fetch. True when a snapshot was stored."""
        now = self._clock()
        try:
            if self.provider is None:
                found, self.detection = detect(self._candidates)
                if found is None:
                    raise ProviderError(self.detection.reason)
                self.provider = self._rebuild(found.name) if self._rebuild else found
                log.info("detected %s: %s", found.name, self.detection.reason)
            snapshot = self.provider.fetch().with_fallbacks(self._fallbacks)
        except (UpstreamError, ProviderError, ValueError) as err:
            with self._lock:
                self._state.last_error = str(err)
                self._state.last_attempt = now
            log.warning("metadata refresh failed: %s", err)
            return False
        with self._lock:
            recovered = self._state.last_error is not None
            self._state = State(snapshot, self._clock(), None, now)
        if recovered:
            log.info("metadata refresh recovered")
        return True

    def run(self) -> None:
        # Failures retry quickly at first, backing off to the TTL so a dead service is not
        # hammered (QingCloud allows 5 requests/minute per instance).
        delay = 0.5
        while not self._stop.is_set():
            if self.refresh_once():
                delay = 0.5
                self._stop.wait(self._ttl)
            else:
                self._stop.wait(delay)
                delay = min(delay * 2, max(self._ttl, 0.5))

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="metadata-refresh", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def read(self) -> tuple[Snapshot | None, float, str | None]:
        """The snapshot, its age in seconds, and the last refresh error (None if fresh)."""
        with self._lock:
            state = self._state
        age = self._clock() - state.fetched_at if state.snapshot else 0.0
        return state.snapshot, age, state.last_error
