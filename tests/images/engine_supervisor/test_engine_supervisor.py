"""images/_common/engine_supervisor.py run as a process, as an image runs it: a small engine
that journals the signals it gets, and real nginx for a reload under an open download."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import ROOT, free_port, kubelet_update, wait_for

SUPERVISOR = ROOT / "images" / "_common" / "engine_supervisor.py"
ENGINE = Path(__file__).with_name("toy_engine.py")


@dataclass
class Supervised:
    proc: subprocess.Popen[str]
    health: int
    port: int
    journal: Path

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health}{path}",
                                        timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def events(self) -> list[str]:
        return self.journal.read_text().splitlines() if self.journal.exists() else []

    def metric(self, name: str) -> float:
        for line in self.get("/metrics")[1].splitlines():
            if line.startswith(f"engine_supervisor_{name}{{"):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"no metric {name}")

    def stop(self, timeout: float = 10) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err


def start(tmp_path: Path, *flags: str, engine: tuple[str, ...] = (),
          env: dict[str, str] | None = None, port: int | None = None) -> Supervised:
    health, port = free_port(), port or free_port()
    journal = tmp_path / "journal"
    command = [sys.executable, str(SUPERVISOR), "--health-bind", f"127.0.0.1:{health}",
               "--stop-signal", "QUIT", *flags, "--",
               sys.executable, str(ENGINE), str(port), str(journal), *engine]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, env={**os.environ, **(env or {})})
    run = Supervised(proc, health, port, journal)
    wait_for("the engine to listen", lambda: "listening" in run.events() or
             proc.poll() is not None, 30)
    wait_for("the health endpoint", lambda: _answers(health) or proc.poll() is not None, 30)
    return run


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Supervised]:
    run = start(tmp_path)
    yield run
    if run.proc.poll() is None:
        run.stop()


def test_health_ready_and_counters_while_the_engine_runs(supervised: Supervised) -> None:
    assert supervised.get("/healthz") == (200, "ok\n")
    assert supervised.get("/readyz") == (200, "ready\n")
    assert supervised.metric("engine_up") == 1
    assert supervised.metric("reloads_total") == 0
    assert supervised.get("/nothing")[0] == 404


def test_sigterm_becomes_the_engines_graceful_signal_and_a_clean_exit(
        supervised: Supervised) -> None:
    code, err = supervised.stop()
    assert code == 0, err
    assert supervised.events() == ["listening", "SIGQUIT"]
    assert "sending SIGQUIT" in err


def test_not_ready_until_the_engine_accepts_on_its_port(tmp_path: Path) -> None:
    closed = free_port()
    run = start(tmp_path, "--ready-tcp", f"127.0.0.1:{closed}")
    try:
        assert run.get("/healthz")[0] == 200
        status, body = run.get("/readyz")
        assert status == 503 and body.endswith(" not ready\n")
    finally:
        run.stop()
    port, again = free_port(), tmp_path / "again"
    again.mkdir()
    run = start(again, "--ready-tcp", f"127.0.0.1:{port}", port=port)
    try:
        assert run.get("/readyz") == (200, "ready\n")
    finally:
        run.stop()


def test_an_engine_that_ignores_the_stop_is_killed_after_the_timeout(tmp_path: Path) -> None:
    run = start(tmp_path, "--stop-timeout", "0.5", engine=("--ignore-stop",))
    code, err = run.stop()
    assert run.events() == ["listening", "SIGQUIT"]
    assert code == 128 + signal.SIGKILL, err
    assert "SIGKILL" in err


def test_an_engine_that_exits_by_itself_fails_the_container(tmp_path: Path) -> None:
    for asked, expected in (("3", 3), ("0", 1)):
        run = start(tmp_path)
        with socket.create_connection(("127.0.0.1", run.port)) as conn:
            conn.sendall(f"exit {asked}\n".encode())
        _, err = run.proc.communicate(timeout=10)
        assert run.proc.returncode == expected, err
        assert f"exited by itself (exit {asked})" in err
        run.journal.unlink()


def test_a_data_symlink_swap_reloads_only_after_the_check_passes(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    kubelet_update(secret, {"tls.crt": b"good 1\n"})
    check = f"grep -q good {secret}/tls.crt"
    run = start(tmp_path, "--watch-dir", str(secret), "--watch-interval", "0.1",
                "--check-command", check)
    try:
        kubelet_update(secret, {"tls.crt": b"good 2\n"})
        wait_for("a reload", lambda: "SIGHUP" in run.events(), 30)
        # The supervisor counts the reload just after it signalled: the engine may log first.
        reloads = wait_for("the reload counted",
                           lambda: (n := run.metric("reloads_total")) >= 1 and n, 30)
        assert reloads == 1
        kubelet_update(secret, {"tls.crt": b"broken\n"})
        wait_for("a failed reload", lambda: run.metric("reload_failures_total") == 1, 30)
        assert run.events().count("SIGHUP") == 1 and run.get("/readyz")[0] == 200
        kubelet_update(secret, {"tls.crt": b"good 3\n"})
        wait_for("the second reload", lambda: run.events().count("SIGHUP") == 2, 30)
        assert run.metric("config_changes_total") == 3
    finally:
        code, err = run.stop()
    assert code == 0
    assert "check failed (exit 1)" in err and "keeps its running config" in err


def test_an_engine_without_reload_says_a_restart_is_needed(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    kubelet_update(config, {"servers": b"a\n"})
    run = start(tmp_path, "--watch-dir", str(config), "--watch-interval", "0.1",
                "--reload-signal", "none")
    kubelet_update(config, {"servers": b"b\n"})
    wait_for("the change to be seen", lambda: run.metric("config_changes_total") == 1, 30)
    code, err = run.stop()
    assert code == 0 and "SIGHUP" not in run.events()
    assert "has no reload: restart the container to apply it" in err


def test_flags_have_environment_twins_and_the_flag_wins(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    kubelet_update(config, {"a": b"1\n"})
    run = start(tmp_path, env={"ENGINE_SUPERVISOR_WATCH_DIR": str(config),
                               "ENGINE_SUPERVISOR_WATCH_INTERVAL": "0.1",
                               "ENGINE_SUPERVISOR_STOP_SIGNAL": "TERM"})
    kubelet_update(config, {"a": b"2\n"})
    wait_for("a reload from the env-configured watch", lambda: "SIGHUP" in run.events(), 30)
    run.stop()
    assert run.events()[-1] == "SIGQUIT"  # --stop-signal QUIT beat the environment's TERM
    help_text = subprocess.run([sys.executable, str(SUPERVISOR), "--help"], text=True,
                               capture_output=True, check=True).stdout
    assert "ENGINE_SUPERVISOR_HEALTH_BIND" in " ".join(help_text.split())


@pytest.mark.parametrize(("flags", "message"), [
    ([], "no engine command after --"),
    (["--health-bind", "localhost", "--", "true"], "--health-bind 'localhost': expected"),
    (["--stop-signal", "NOPE", "--", "true"], "--stop-signal 'NOPE': not a signal name"),
    (["--watch-dir", "/does/not/exist", "--", "true"], "watched dir /does/not/exist does not"),
    (["--", "/does/not/exist"], "cannot start /does/not/exist"),
])
def test_bad_input_is_one_line_and_exit_2(flags: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, str(SUPERVISOR), "--health-bind",
                           f"127.0.0.1:{free_port()}", *flags], capture_output=True, text=True,
                          timeout=10, check=False)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and message in done.stderr, done.stderr


NGINX_CONF = """
{user}
worker_processes 1;
pid {work}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {work}/body;
  proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi;
  scgi_temp_path {work}/scgi;
  server {{
    listen 127.0.0.1:{port};
    root {work}/www;
    limit_rate 1m;
    include {conf}/version.conf;
  }}
}}
"""


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_nginx_reloads_on_a_swap_and_an_open_download_completes(tmp_path: Path) -> None:
    nginx = shutil.which("nginx")
    assert nginx is not None
    conf, www, port, health = tmp_path / "conf", tmp_path / "www", free_port(), free_port()
    conf.mkdir()
    www.mkdir()
    payload = os.urandom(3 * 1024 * 1024)  # three seconds at limit_rate 1m
    (www / "big").write_bytes(payload)
    kubelet_update(conf, {"version.conf": b"add_header X-Version one always;\n"})
    main = tmp_path / "nginx.conf"
    main.write_text(NGINX_CONF.format(work=tmp_path, port=port, conf=conf,
                                      user="user root;" if os.geteuid() == 0 else ""))
    proc = subprocess.Popen(
        [sys.executable, str(SUPERVISOR), "--health-bind", f"127.0.0.1:{health}",
         "--stop-signal", "QUIT", "--watch-dir", str(conf), "--watch-interval", "0.1",
         "--check-command", f"{nginx} -t -q -c {main}", "--ready-tcp", f"127.0.0.1:{port}",
         "--", nginx, "-c", str(main), "-g", "daemon off;"],
        stderr=(tmp_path / "log").open("w"), text=True)
    try:
        def version() -> str | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/nothing", timeout=10):
                    pass
            except urllib.error.HTTPError as error:
                return error.headers.get("X-Version")
            except OSError:
                return None
            return None

        assert wait_for("nginx to answer", version, 30) == "one"
        download = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        download.request("GET", "/big")
        response = download.getresponse()
        first = response.read(64 * 1024)
        kubelet_update(conf, {"version.conf": b"add_header X-Version two always;\n"})
        assert wait_for("new connections to see the new config",
                        lambda: version() == "two" and "two", 30)
        rest = response.read()
        assert first + rest == payload, "the download started before the reload was cut"
        kubelet_update(conf, {"version.conf": b"add_header X-Version;\n"})  # nginx -t fails
        wait_for("the failed check", lambda: "not reloading" in (tmp_path / "log").read_text(), 30)
        assert version() == "two"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0, (tmp_path / "log").read_text()


def test_with_nothing_to_watch_the_supervisor_sleeps(tmp_path: Path) -> None:
    """An engine without --watch-dir (redis-ambassador, tls-proxy, metrics-adapter): once the
    watch interval had passed, the loop polled with a zero timeout, half a core per pod. Idle
    CPU needs a window of time to be seen: 2 s of wall time, and a bound 10x the fixed loop's."""
    run = start(tmp_path, "--watch-interval", "0.05")
    try:
        def cpu_seconds() -> float:
            fields = Path(f"/proc/{run.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        before, started = cpu_seconds(), time.monotonic()
        time.sleep(2)
        used = (cpu_seconds() - before) / (time.monotonic() - started)
        assert used < 0.1, f"the idle supervisor used {used:.0%} of a core"
        assert run.get("/healthz") == (200, "ok\n")
    finally:
        run.stop()
