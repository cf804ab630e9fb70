"""redis-ambassador in a pod the generator makes, in front of three real redis-server shards
(Debian's, as processes on the host; the pod uses the host network so that 127.0.0.1 is the
same for both). The app is the example's unchanged redis-cli image; every key's shard is
predicted with twemproxy's own ketama + fnv1a_64 algorithm, written out below."""

from __future__ import annotations

import base64
import bisect
import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from pods import RunningPod, running, stack_documents
from support import CATALOGUE, free_port, unique_name, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ambassador_images")]

APP_IMAGE = "localhost/sidecar-patterns-examples/redis-app:bookworm"
EXAMPLE = CATALOGUE / "redis-ambassador" / "examples"
KEYS = 10_000
RETRY_MS = 3000
# Where a timeout is not what a test is about, a generous one: on a loaded 2-core machine a
# shard can take longer than the example's 400 ms, and a timeout counts as a failure.
SLOW_OK_MS = 3000


def fnv1a_64(key: bytes) -> int:
    """twemproxy's hash_fnv1a_64: the 64-bit constants truncated to 32 bits."""
    value = 0xCBF29CE484222325 & 0xFFFFFFFF
    for byte in key:
        value = ((value ^ byte) * (0x100000001B3 & 0xFFFFFFFF)) & 0xFFFFFFFF
    return value


def ketama(names: list[str]) -> tuple[list[int], list[int]]:
    """twemproxy's continuum for equal weights: 160 points a server, four per md5 of
    "<host:port>-<i>", sorted by point."""
    points: list[tuple[int, int]] = []
    for index, name in enumerate(names):
        for i in range(160 // 4):
            digest = hashlib.md5(f"{name}-{i}".encode()).digest()
            for x in range(4):
                points.append((int.from_bytes(digest[x * 4: x * 4 + 4], "little"), index))
    points.sort()
    return [p for p, _ in points], [s for _, s in points]


def shard_of(key: str, continuum: tuple[list[int], list[int]]) -> int:
    values, owners = continuum
    at = bisect.bisect_left(values, fnv1a_64(key.encode()))
    return owners[at if at < len(values) else 0]


@dataclass
class Shard:
    port: int
    password: str | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        auth = ["--requirepass", self.password] if self.password else []
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--loglevel", "warning", *auth], stdout=subprocess.DEVNULL)
        wait_for(f"redis-server on {self.port}", lambda: self.cli("PING") == "PONG", 30)

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def cli(self, *args: str) -> str:
        auth = ["--no-auth-warning", "-a", self.password] if self.password else []
        done = subprocess.run(["redis-cli", "-p", str(self.port), *auth, *args],
                              capture_output=True, text=True, timeout=30, check=False)
        return done.stdout.strip()

    def stored(self) -> set[str]:
        return set(self.cli("--scan").split())


@pytest.fixture
def shards() -> Iterator[list[Shard]]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server (Debian) is missing: apt-get install redis-server redis-tools")
    started = [Shard(free_port()) for _ in range(3)]
    for shard in started:
        shard.start()
    yield started
    for shard in started:
        if shard.proc is not None and shard.proc.poll() is None:
            shard.stop()


@pytest.fixture(scope="module")
def app_image() -> str:
    subprocess.run(["podman", "build", "--pull=never", "-q", "-t", APP_IMAGE,
                    str(EXAMPLE / "app")], check=True, capture_output=True, timeout=600)
    return APP_IMAGE


@dataclass(frozen=True)
class Ambassador:
    pod: RunningPod
    port: int
    app: str

    def redis(self, *commands: str, password: str | None = None) -> list[str]:
        """Commands sent by the app's own redis-cli to localhost, one reply line each."""
        auth = f" --no-auth-warning -a '{password}'" if password else ""
        script = f'printf "%s\\n" "$@" | redis-cli -p {self.port}{auth}'
        done = self.pod.exec(self.app, "sh", "-c", script, "sh", *commands, timeout=120)
        return done.stdout.splitlines()


def example(name: str, shards: list[Shard], **values: Any) -> dict[str, Any]:
    stack: dict[str, Any] = yaml.safe_load((EXAMPLE / "cache-shards.stack.yaml").read_text())
    stack["metadata"]["name"] = name
    stack["spec"]["kind"] = "Pod"
    stack["spec"]["pod"]["hostNetwork"] = True
    # The example's probe asks port 6379; on the host network the test picks a free one.
    stack["spec"]["app"]["readinessProbe"]["exec"]["command"][4] = str(values["port"])
    sidecar = stack["spec"]["sidecars"][0]["values"]
    sidecar.update(servers=[f"127.0.0.1:{s.port}:1" for s in shards], **values)
    return stack


@pytest.fixture
def ambassador(app_image: str, shards: list[Shard]) -> Iterator[Ambassador]:
    port, name = free_port(), unique_name("amb-redis")
    stack = example(name, shards, port=port, healthPort=free_port(),
                    statsPort=free_port(), serverRetryTimeoutMs=RETRY_MS, serverFailureLimit=1,
                    timeoutMs=SLOW_OK_MS)
    with running(stack_documents(stack, CATALOGUE)) as (pod,):
        yield Ambassador(pod, port, name)


def test_10000_keys_land_on_the_shard_the_hash_names(ambassador: Ambassador,
                                                     shards: list[Shard]) -> None:
    replies = ambassador.redis(*(f"SET key:{n} value-{n}" for n in range(KEYS)))
    assert replies == ["OK"] * KEYS
    continuum = ketama([f"127.0.0.1:{s.port}" for s in shards])
    expected: list[set[str]] = [set(), set(), set()]
    for n in range(KEYS):
        expected[shard_of(f"key:{n}", continuum)].add(f"key:{n}")
    found = [shard.stored() for shard in shards]
    assert [len(f) for f in found] == [len(e) for e in expected]
    assert found == expected  # every key where ketama puts it, none twice, none lost
    assert all(len(f) > KEYS // 10 for f in found), [len(f) for f in found]
    print("keys per shard:", [len(f) for f in found])
    assert ambassador.redis("GET key:42", "MGET key:1 key:2 key:3") == [
        "value-42", "value-1", "value-2", "value-3"]
    # What the README says about commands: MSET/DEL are split over shards, MULTI is refused.
    assert ambassador.redis("MSET key:1 a key:2 b key:3 c", "MGET key:1 key:2 key:3",
                            "DEL key:1 key:2") == ["OK", "a", "b", "c", "2"]
    assert ambassador.redis("MULTI") != ["OK"]
    assert ambassador.pod.exec("redis-ambassador", "redis-ambassador", "healthcheck",
                               "--health-bind", "x:1", check=False).returncode != 0
    # The pattern passes the health port by environment, which the healthcheck reads too.
    healthy = ambassador.pod.exec("redis-ambassador", "redis-ambassador", "healthcheck")
    assert healthy.returncode == 0


def test_a_stopped_shard_is_ejected_and_returns_after_the_retry_timeout(
        ambassador: Ambassador, shards: list[Shard]) -> None:
    continuum = ketama([f"127.0.0.1:{s.port}" for s in shards])
    owned = [f"probe:{n}" for n in range(20000) if shard_of(f"probe:{n}", continuum) == 2]
    assert len(owned) >= 400
    shards[2].stop()
    # The first request for a key of the stopped shard fails (serverFailureLimit 1), then
    # the shard is out: its keys go to the others and the app keeps working.
    first = ambassador.redis(f"SET {owned[0]} during")
    assert first != ["OK"], first
    replies = ambassador.redis(*(f"SET {key} during" for key in owned[1:200]))
    assert replies == ["OK"] * 199
    elsewhere = shards[0].stored() | shards[1].stored()
    assert set(owned[1:200]) <= elsewhere
    # After RETRY_MS the shard is tried again; once it is back its keys go to it again.
    shards[2].start()
    wait_for("the shard's return", lambda: ambassador.redis(f"SET {owned[300]} back") == ["OK"]
             and owned[300] in shards[2].stored(), RETRY_MS / 1000 * 5)
    assert ambassador.redis(*(f"SET {key} back" for key in owned[301:400])) == ["OK"] * 99
    assert set(owned[301:400]) <= shards[2].stored()


def test_without_auto_eject_a_down_shards_keys_fail_fast_and_the_others_work(
        app_image: str, shards: list[Shard]) -> None:
    port, name = free_port(), unique_name("amb-redis-store")
    stack = example(name, shards, port=port, healthPort=free_port(),
                    statsPort=free_port(), autoEject=False, timeoutMs=SLOW_OK_MS)
    continuum = ketama([f"127.0.0.1:{s.port}" for s in shards])
    with running(stack_documents(stack, CATALOGUE)) as (pod,):
        store = Ambassador(pod, port, name)
        owned = {s: [f"k:{n}" for n in range(5000) if shard_of(f"k:{n}", continuum) == s][:50]
                 for s in range(3)}
        assert all(len(keys) == 50 for keys in owned.values())
        shards[1].stop()
        for _ in range(3):  # never ejected: it keeps failing, never remaps
            replies = store.redis(*(f"SET {key} x" for key in owned[1]))
            assert all(r != "OK" for r in replies), replies
        assert store.redis(*(f"SET {key} x" for key in owned[0] + owned[2])) == ["OK"] * 100
        assert not set(owned[1]) & (shards[0].stored() | shards[2].stored())


def test_password_protected_shards_and_an_app_that_sends_auth(app_image: str) -> None:
    password = "s3cret-shard-pw"
    shards = [Shard(free_port(), password) for _ in range(3)]
    for shard in shards:
        shard.start()
    try:
        port, name = free_port(), unique_name("amb-redis-auth")
        stack = example(name, shards, port=port, healthPort=free_port(),
                        statsPort=free_port(), passwordSecret="amb-redis-auth-pw",
                        timeoutMs=SLOW_OK_MS)
        secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                  "metadata": {"name": "amb-redis-auth-pw"},
                  "data": {"password": base64.b64encode(f"{password}\n".encode()).decode()}}
        with running([secret, *stack_documents(stack, CATALOGUE)]) as (pod,):
            app = Ambassador(pod, port, name)
            assert app.redis("SET a 1")[0].startswith("NOAUTH")
            replies = app.redis(*(f"SET auth:{n} v" for n in range(300)), password=password)
            assert replies == ["OK"] * 300
        assert sum(len(s.stored()) for s in shards) == 300
        # Where keys land depends on the shards' host:port names (random ports here): the
        # spread itself is the 10,000-key test's; here, authenticated writes reach shards.
        assert sum(1 for s in shards if s.stored()) >= 2
    finally:
        for shard in shards:
            shard.stop()
