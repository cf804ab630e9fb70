"""`pattern webhook serve` under load, as a real process over TLS, beside its floor.

    python benchmarks/webhook_bench.py [--rate 50] [--seconds 20] [--burst 500]

1. Sustained: `--rate` AdmissionReviews a second (open loop: each sent at its scheduled time,
   over kept-alive connections as the API server keeps them), for `--seconds`; p50, p99, max.
   The floor beside it: the same review answered in-process (`webhook.review`, no HTTP/TLS).
2. Burst: `--burst` clients connect at once (a new TLS connection each) and send one review;
   how many are answered within the MutatingWebhookConfiguration's timeoutSeconds (10 s), and
   the slowest.
3. Memory: the server's RSS idle, after the sustained run and its peak (VmHWM) after the burst.
4. SIGTERM: a review whose body is still arriving when the server gets SIGTERM is answered,
   and the process exits 0.

Each review injects log-collector into a pod as the API server sends it (a Deployment's pod).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from admission import SERVER_NAME, Client, Tls, api_server_pod, review_of  # noqa: E402
from support import free_port, wait_for  # noqa: E402

from generator.catalogue import Catalogue  # noqa: E402
from generator.webhook import Settings, review  # noqa: E402

TIMEOUT_SECONDS = 10  # webhook manifests' default timeoutSeconds


def body(uid: str) -> bytes:
    pod = api_server_pod(name=None, annotations={"sidecar-patterns.io/inject": "log-collector"})
    return json.dumps(review_of(pod, uid=uid)).encode()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def floor(count: int) -> list[float]:
    catalogue, settings = Catalogue(), Settings()
    review(body("warm"), settings, catalogue)
    took = []
    for index in range(count):
        data = body(f"floor-{index}")
        started = time.perf_counter()
        review(data, settings, catalogue)
        took.append((time.perf_counter() - started) * 1000)
    return took


def sustained(port: int, ca: Path, rate: float, seconds: float) -> tuple[list[float], int]:
    total = int(rate * seconds)
    start = time.perf_counter() + 0.2
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    next_index = iter(range(total))

    def worker() -> None:
        nonlocal failures
        client = Client(port, ca)
        for index in next_index:
            due = start + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent = time.perf_counter()
            try:
                ok = client.review(body(f"s-{index}"))["response"]["allowed"]
            except Exception:
                ok = False
            took = (time.perf_counter() - sent) * 1000
            with lock:
                latencies.append(took)
                failures += not ok
        client.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failures


def burst(port: int, ca: Path, count: int) -> tuple[list[float], int]:
    barrier = threading.Barrier(count)
    latencies: list[float] = []
    lock = threading.Lock()
    unanswered = 0

    def one(index: int) -> None:
        nonlocal unanswered
        client = Client(port, ca, timeout=TIMEOUT_SECONDS * 3)
        data = body(f"b-{index}")
        barrier.wait()
        started = time.perf_counter()
        try:
            ok = client.review(data)["response"]["allowed"]
        except Exception:
            ok = False
        took = (time.perf_counter() - started) * 1000
        client.close()
        with lock:
            latencies.append(took)
            unanswered += not ok

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, unanswered


def drain(process: subprocess.Popen[bytes], port: int, ca: Path) -> tuple[bool, int | None]:
    data = body("in-flight")
    context = ssl.create_default_context(cafile=str(ca))
    sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                               server_hostname=SERVER_NAME)
    sock.sendall(b"POST /mutate HTTP/1.1\r\nHost: webhook\r\nContent-Length: "
                 + str(len(data)).encode() + b"\r\n\r\n" + data[:200])
    time.sleep(0.2)  # benchmark only: let the server start reading the request
    process.send_signal(signal.SIGTERM)
    sock.sendall(data[200:])
    answer = b""
    sock.settimeout(30)
    while b"in-flight" not in answer:
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    sock.close()
    code = process.wait(60)
    return b"in-flight" in answer and answer.startswith(b"HTTP/1.1 200"), code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--burst", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="webhook-bench-") as folder:
        tls = Tls.make(Path(folder))
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "generator", "webhook", "serve", "--address", "127.0.0.1",
             "--port", str(port), "--cert-file", str(tls.cert), "--key-file", str(tls.key),
             "--drain-seconds", "1"], cwd=ROOT, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            probe = Client(port, tls.ca)
            wait_for("the webhook to listen", lambda: _up(probe), timeout=60)
            idle = rss_kib(process.pid)
            base = floor(200)
            latencies, failures = sustained(port, tls.ca, args.rate, args.seconds)
            after = rss_kib(process.pid)
            spikes, unanswered = burst(port, tls.ca, args.burst)
            peak = rss_kib(process.pid, "VmHWM")
            health = probe.health()
            probe.close()
            drained, code = drain(process, port, tls.ca)
        finally:
            if process.poll() is None:
                process.kill()
    print(f"sustained {args.rate:g} reviews/s for {args.seconds:g} s ({len(latencies)} "
          f"reviews, {failures} not allowed), ms:")
    print(f"  {'':24} {'p50':>7} {'p99':>7} {'max':>7}")
    print(f"  {'webhook over TLS':24} {statistics.median(latencies):7.2f} "
          f"{percentile(latencies, 0.99):7.2f} {max(latencies):7.2f}")
    print(f"  {'floor: review() alone':24} {statistics.median(base):7.2f} "
          f"{percentile(base, 0.99):7.2f} {max(base):7.2f}")
    within = sum(1 for t in spikes if t <= TIMEOUT_SECONDS * 1000)
    print(f"burst of {args.burst} at once (new TLS connections): {within} answered within "
          f"{TIMEOUT_SECONDS} s, {unanswered} failed; p50 {statistics.median(spikes):.0f} ms, "
          f"slowest {max(spikes):.0f} ms")
    print(f"RSS: idle {idle / 1024:.1f} MiB, after sustained {after / 1024:.1f} MiB, peak "
          f"(burst) {peak / 1024:.1f} MiB")
    print(f"SIGTERM with a review in flight: answered={drained}, exit code {code}")
    print(f"server counters: {json.dumps({k: health[k] for k in ('reviews', 'denied')})}, "
          f"internal_errors={health['internal_errors']}")


def _up(client: Client) -> bool:
    try:
        return client.health()["status"] == "ok"
    except OSError:
        client.close()
        return False


if __name__ == "__main__":
    main()
