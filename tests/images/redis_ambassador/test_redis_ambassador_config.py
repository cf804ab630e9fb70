"""The nutcracker.yml redis_ambassador.py writes, checked by `nutcracker -t` for the example's
settings and every option the pattern sets; hostile flag values are refused in one line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import CATALOGUE, ROOT, sidecar_env

IMAGE = ROOT / "images" / "redis-ambassador" / "redis_ambassador.py"
pytestmark = pytest.mark.skipif(shutil.which("nutcracker") is None,
                                reason="needs Debian's nutcracker")


def example_env(*sets: str) -> dict[str, str]:
    stack = CATALOGUE / "redis-ambassador" / "examples" / "cache-shards.stack.yaml"
    return sidecar_env(stack, "redis-ambassador", *sets)


def render(env: dict[str, str], tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """What the entrypoint does before starting nutcracker: write the config, `nutcracker -t`."""
    code = ("import sys, redis_ambassador as r; args = r.build_parser().parse_args(sys.argv[1:]);"
            " r.prepare(args); print(open(args.state_dir + '/nutcracker.yml').read())")
    path = os.pathsep.join([str(IMAGE.parent), str(ROOT / "images" / "_common")])
    full = {**os.environ, **env, "PYTHONPATH": path,
            "REDIS_AMBASSADOR_STATE_DIR": str(tmp_path / "state")}
    return subprocess.run([sys.executable, "-c", code, *flags], capture_output=True, text=True,
                          env=full, timeout=30, check=False)


def test_the_examples_config_passes_nutcracker_t(tmp_path: Path) -> None:
    done = render(example_env(), tmp_path)
    assert done.returncode == 0, done.stderr
    pool = yaml.safe_load(done.stdout)["ambassador"]
    assert pool["listen"] == "127.0.0.1:6379" and pool["timeout"] == 400
    assert pool["auto_eject_hosts"] is True and pool["server_retry_timeout"] == 10000
    assert pool["servers"] == ["redis-0.redis:6379:1", "redis-1.redis:6379:1",
                               "redis-2.redis:6379:1"]


@pytest.mark.parametrize("sets", [
    ("redis-ambassador.autoEject=false", "redis-ambassador.hash=murmur",
     "redis-ambassador.hashTag={}"),
    ("redis-ambassador.protocol=memcache", "redis-ambassador.distribution=modula",
     "redis-ambassador.serverConnections=64", "redis-ambassador.timeoutMs=3600000"),
    ('redis-ambassador.servers=["10.0.0.1:6379:3", "cache.example.org:6380:1"]',
     "redis-ambassador.port=1024"),
])
def test_every_option_the_pattern_sets_passes_nutcracker_t(tmp_path: Path,
                                                           sets: tuple[str, ...]) -> None:
    done = render(example_env(*sets), tmp_path)
    assert done.returncode == 0, done.stderr


HOSTILE = "x:1:1\n  redis_auth: stolen\nother:"


@pytest.mark.parametrize("flag", [
    "--listen", "--servers", "--protocol", "--hash", "--distribution", "--hash-tag",
    "--timeout-ms", "--auto-eject", "--server-retry-timeout-ms", "--server-failure-limit",
    "--server-connections", "--stats-port", "--log-level", "--state-dir",
])
def test_hostile_values_are_refused_before_nutcracker_sees_them(tmp_path: Path,
                                                                flag: str) -> None:
    done = render(example_env(), tmp_path, flag, HOSTILE)
    assert done.returncode != 0 and "stolen" not in done.stdout
    assert flag in done.stderr, done.stderr


@pytest.mark.parametrize(("servers", "message"), [
    ("redis-0:6379", "'redis-0:6379' is not host:port:weight (e.g. redis-0:6379:1)"),
    ("redis-0:70000:1", "'redis-0:70000:1': port must be 1-65535 and weight 1 or more"),
    ("a:1:1,a:1:2", "a:1 is listed twice"),
    ("", "give at least one host:port:weight entry"),
])
def test_bad_server_lists_are_one_line_errors(tmp_path: Path, servers: str,
                                              message: str) -> None:
    env = {**example_env(), "REDIS_AMBASSADOR_SERVERS": servers}
    path = os.pathsep.join([str(IMAGE.parent), str(ROOT / "images" / "_common")])
    done = subprocess.run([sys.executable, str(IMAGE), "--state-dir", str(tmp_path / "s")],
                          capture_output=True, text=True, timeout=30, check=False,
                          env={**os.environ, **env, "PYTHONPATH": path})
    assert done.returncode == 2
    assert done.stderr.strip() == f"redis-ambassador: error: --servers: {message}"


def test_a_password_with_quotes_reaches_redis_auth_intact(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text('p"w: {x}\\ #1\nsecond line is ignored\n')
    env = {**example_env("redis-ambassador.passwordSecret=cache-pw"),
           "REDIS_AMBASSADOR_PASSWORD_FILE": str(secret)}
    done = render(env, tmp_path)
    assert done.returncode == 0, done.stderr
    pool = yaml.safe_load(done.stdout)["ambassador"]
    assert pool["redis_auth"] == 'p"w: {x}\\ #1' and "second" not in done.stdout
    secret.write_text("\n")
    done = render(env, tmp_path)
    assert done.returncode != 0
    assert f"--password-file {secret}: the first line must be the password" in done.stderr
