"""Probes and lifecycle handlers, executed the way the kubelet does: exec in the container,
httpGet and tcpSocket from the host to the pod's IP."""

from __future__ import annotations

import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from .plan import handler_port
from .runtime import Runtime


@dataclass(frozen=True)
class Target:
    """Where a container's probes go."""

    container: str  # the engine's container name
    ip: str
    named_ports: dict[str, int]
    runtime: Runtime


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str


def _tail(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else "…" + text[-limit:]


def run_action(action: dict[str, Any], target: Target, timeout: float) -> Outcome:
    """One probe attempt or one hook call."""
    if "exec" in action:
        command = [str(c) for c in action["exec"].get("command") or []]
        result = target.runtime.exec(target.container, command, timeout=timeout + 5)
        output = _tail(result.stdout + result.stderr)
        return Outcome(result.code == 0, f"exec {command}: exit {result.code}"
                       + (f": {output}" if output else ""))
    if "httpGet" in action:
        get = action["httpGet"]
        port = handler_port(get, target.named_ports)
        host = get.get("host") or target.ip
        url = f"{get.get('scheme', 'HTTP').lower()}://{host}:{port}{get.get('path', '/')}"
        request = urllib.request.Request(url, headers={
            h["name"]: h["value"] for h in get.get("httpHeaders") or []})
        # The kubelet sends an HTTPS probe without verifying the certificate (it has no CA for
        # it); so do we, or a pod serving its own certificate would never get ready.
        context = ssl._create_unverified_context() if url.startswith("https:") else None
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
                return Outcome(200 <= response.status < 400, f"GET {url}: {response.status}")
        except urllib.error.HTTPError as error:
            return Outcome(False, f"GET {url}: {error.code}")
        except (OSError, urllib.error.URLError) as error:
            return Outcome(False, f"GET {url}: {getattr(error, 'reason', error)}")
    if "tcpSocket" in action:
        tcp = action["tcpSocket"]
        port = handler_port(tcp, target.named_ports)
        host = tcp.get("host") or target.ip
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return Outcome(True, f"tcp {host}:{port}: open")
        except OSError as error:
            return Outcome(False, f"tcp {host}:{port}: {error.strerror or error}")
    if "sleep" in action:
        time.sleep(float(action["sleep"].get("seconds", 0)))
        return Outcome(True, "slept")
    return Outcome(False, f"unsupported action {sorted(action)} (pattern run supports exec, "
                   "httpGet, tcpSocket and sleep)")


def probe_once(probe: dict[str, Any], target: Target) -> Outcome:
    return run_action(probe, target, float(probe.get("timeoutSeconds", 1)))


def wait_until(probe: dict[str, Any], target: Target, deadline: float, *,
               give_up_after_failures: bool, is_running: Any) -> Outcome:
    """Poll a probe until it succeeds `successThreshold` times in a row.

    Polls at most every second (sooner than a kubelet's period) so local runs are quick; the
    result is never earlier than Kubernetes could report it, bar the shorter period.
    A startup probe gives up after `failureThreshold` failures, as the kubelet does.
    """
    time.sleep(float(probe.get("initialDelaySeconds", 0)))
    period = min(float(probe.get("periodSeconds", 10)), 1.0)
    needed, allowed = int(probe.get("successThreshold", 1)), int(probe.get("failureThreshold", 3))
    successes = failures = 0
    last = Outcome(False, "not probed yet")
    while time.monotonic() < deadline:
        if not is_running():
            return Outcome(False, "the container exited")
        last = probe_once(probe, target)
        if last.ok:
            successes += 1
            if successes >= needed:
                return last
        else:
            successes, failures = 0, failures + 1
            if give_up_after_failures and failures >= allowed * max(
                    1, round(float(probe.get("periodSeconds", 10)) / period)):
                return Outcome(False, f"failed {allowed} times: {last.detail}")
        time.sleep(period)
    return Outcome(False, f"timed out: {last.detail}")
