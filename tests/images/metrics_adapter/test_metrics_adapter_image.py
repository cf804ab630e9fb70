"""The metrics-adapter image's entrypoint: what each adapter runs, that credentials reach the
exporter only as files or its environment, one-line errors for what an exporter cannot take,
and (in the image) that the level program mtail runs counts what was written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from metrics_adapter import exporters as ex
from metrics_adapter.__main__ import parse
from support import ROOT, kubelet_update, wait_for

from generator import images

IMAGE_DIR = ROOT / "images" / "metrics-adapter"

SECRET = "s3cr3t #;\"'` $HOME"


def settings(tmp_path: Path, adapter: str, *argv: str, **files: str) -> ex.Settings:
    creds = tmp_path / "creds"
    creds.mkdir(parents=True, exist_ok=True)
    for key, text in files.items():
        (creds / key).write_text(text)
    return parse(["--adapter", adapter, "--credentials-dir", str(creds),
                  "--state-dir", str(tmp_path / "state"), *argv])


def entrypoint(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "metrics_adapter", *argv], cwd=IMAGE_DIR,
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {}), "PYTHONPATH":
                               f"{IMAGE_DIR}:{ROOT / 'images' / '_common'}"})


def test_every_adapter_listens_on_its_usual_port_and_reaches_the_app_on_localhost(
        tmp_path: Path) -> None:
    want = {"mysql": ("--web.listen-address=:9104", "host = 127.0.0.1\nport = 3306"),
            "postgres": ("--web.listen-address=:9187", "127.0.0.1:5432/postgres?sslmode=disable"),
            "nginx": ("-web.listen-address=:9113",
                      "-nginx.scrape-uri=http://127.0.0.1:8080/stub_status"),
            "redis": ("-web.listen-address=:9121", "-redis.addr=redis://127.0.0.1:6379")}
    for adapter, (listen, target) in want.items():
        plan = ex.launch(settings(tmp_path / adapter, adapter, username="mon", password="pw"))
        assert listen in plan.argv, plan
        where = "\n".join(plan.argv + list(plan.env.values()) +
                          [f.read_text() for f in plan.files])
        assert target in where, (adapter, where)


def test_credentials_never_reach_the_command_line(tmp_path: Path) -> None:
    for adapter in ("mysql", "postgres", "redis"):
        password = SECRET.replace(" ", "") if adapter == "postgres" else SECRET
        plan = ex.launch(settings(tmp_path / adapter, adapter, username="mon",
                                  password=password + "\n"))
        assert not any(password in arg for arg in plan.argv), plan.argv
    mysql = ex.launch(settings(tmp_path / "m2", "mysql", username="mon", password=SECRET))
    (cnf,) = mysql.files
    assert cnf.stat().st_mode & 0o777 == 0o600
    assert 'password = """' + SECRET + '"""' in cnf.read_text()  # the one quote it lacks
    redis = ex.launch(settings(tmp_path / "r2", "redis", password=SECRET + "\n"))
    assert redis.env == {"REDIS_PASSWORD": SECRET}  # one trailing newline dropped
    pg = ex.launch(settings(tmp_path / "p2", "postgres", username="mon", password="x"))
    assert pg.env["DATA_SOURCE_PASS_FILE"].endswith("/creds/password")


def test_my_cnf_quotes_pick_one_the_value_lacks() -> None:
    assert ex.my_cnf_value("a b#c") == "`a b#c`"
    assert ex.my_cnf_value("a`b") == '"a`b"'
    assert ex.my_cnf_value('a`b"c') == '"""a`b"c"""'
    with pytest.raises(ex.SettingsError, match="cannot carry"):
        ex.my_cnf_value('a`b"""c')


@pytest.mark.parametrize(("adapter", "files", "message"), [
    ("mysql", {"username": "u", "password": "a?b"},
     "the mysql password holds '?', which mysqld_exporter 0.14 cannot use"),
    ("postgres", {"username": "u", "password": "a b"},
     "the postgres password holds a space, which postgres_exporter 0.11 cannot use"),
    ("mysql", {"password": "x"}, "credential file"),
    ("mysql", {"username": "u", "password": "two\nlines"}, "must hold one line"),
])
def test_what_an_exporter_cannot_take_is_one_line_at_start(tmp_path: Path, adapter: str,
                                                           files: dict[str, str],
                                                           message: str) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    for key, text in files.items():
        (creds / key).write_text(text)
    proc = entrypoint("--adapter", adapter, "--credentials-dir", str(creds),
                      "--state-dir", str(tmp_path / "state"))
    assert proc.returncode == 2, proc
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr


@pytest.mark.parametrize("arg", ["--redis.password=x", "-redis.addr=redis://h", "--dsn=x"])
def test_exporter_args_cannot_carry_credentials_or_override_the_adapter(tmp_path: Path,
                                                                         arg: str) -> None:
    proc = entrypoint("--adapter", "redis", "--state-dir", str(tmp_path),
                      "--credentials-dir", str(tmp_path), env={
                          "METRICS_ADAPTER_EXPORTER_ARGS": f"-include-system-metrics\n{arg}"})
    assert proc.returncode == 2 and "--exporter-args" in proc.stderr, proc


def test_flags_win_over_their_environment_twins(tmp_path: Path) -> None:
    os.environ["METRICS_ADAPTER_PORT"] = "9999"
    try:
        assert parse(["--adapter", "redis"]).port == 9999
        assert parse(["--adapter", "redis", "--port", "9200"]).port == 9200
    finally:
        del os.environ["METRICS_ADAPTER_PORT"]


def test_logs_creates_the_named_files_and_assembles_programs(tmp_path: Path) -> None:
    logs, user = tmp_path / "logs", tmp_path / "user"
    logs.mkdir()
    user.mkdir()
    (user / "checkout.mtail").write_text("counter c\n/x/ {\n  c++\n}\n")
    (user / "..data").mkdir()  # a ConfigMap volume's internals are skipped
    (logs / "info.log").write_text("kept\n")
    plan = ex.launch(settings(tmp_path, "logs", "--log-dir", str(logs), "--program-dirs",
                              str(user), "--files", "error.log=error,info.log=info,*.txt"))
    assert (logs / "error.log").stat().st_mode & 0o777 == 0o666
    assert (logs / "info.log").read_text() == "kept\n"
    assert not list(logs.glob("*.txt"))
    progs = Path(plan.argv[plan.argv.index("-progs") + 1])
    assert sorted(p.name for p in progs.iterdir()) == ["checkout.mtail", "levels.mtail"]
    assert plan.argv[plan.argv.index("-logs") + 1] == ",".join(
        str(logs / g) for g in ("error.log", "info.log", "*.txt"))


def test_mtail_in_the_image_counts_lines_by_level(tmp_path: Path) -> None:
    """The rendered level program, compiled and run by the image's own mtail (one-shot)."""
    (image,) = images.build(["metrics-adapter"], registry=None, tag=None, push=False,
                            quiet=True, say=lambda _: None)
    files = (("error.log", "error"), ("warn+x.log", "warning"), ("app-*.log", "info"))
    progs = tmp_path / "progs"
    progs.mkdir()
    (progs / "levels.mtail").write_text(ex.level_program(files))
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "error.log").write_text("e\n" * 7)
    (logs / "warn+x.log").write_text("w\n" * 3)
    (logs / "app-1.log").write_text("i\n" * 5)
    (logs / "app-2.log").write_text("i\n" * 4)
    (logs / "other.log").write_text("o\n" * 9)  # matched by no glob: not counted
    for path in (progs, logs, *progs.iterdir(), *logs.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    proc = subprocess.run(
        ["podman", "run", "--rm", "--read-only", "--user", "0:0", "-v", f"{tmp_path}:/t:ro",
         "--entrypoint",
         "/usr/bin/mtail", image, "-progs", "/t/progs", "-logs", "/t/logs/*.log", "-one_shot",
         "-one_shot_format", "prometheus", "-logtostderr"],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    counted = {line.split("{")[1].split(",")[0]: line.rsplit(" ", 1)[1]
               for line in proc.stdout.splitlines() if line.startswith("log_lines_total{")}
    assert counted == {'level="error"': "7", 'level="warning"': "3", 'level="info"': "9"}


def test_supervised_exporter_health_readiness_and_clean_stop() -> None:
    """nginx's exporter waits for stub_status: alive (/healthz) but not ready (/readyz) until
    then; SIGTERM stops it and the container exits 0 within a second or two."""
    (image,) = images.build(["metrics-adapter"], registry=None, tag=None, push=False,
                            quiet=True, say=lambda _: None)
    name = f"metrics-adapter-health-{os.getpid()}"
    subprocess.run(["podman", "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp",
                    "-e", "METRICS_ADAPTER_ADAPTER=nginx", "-e",
                    "METRICS_ADAPTER_HEALTH_BIND=127.0.0.1:9899", image],
                   check=True, capture_output=True, timeout=60)
    try:
        def probe(path: str) -> int:
            return subprocess.run(["podman", "exec", name, "python3", "-m", "metrics_adapter",
                                   "healthcheck", path], capture_output=True,
                                  timeout=30).returncode
        wait_for("the supervisor's /healthz", lambda: probe("/healthz") == 0, 60)
        assert probe("/readyz") == 1  # nothing serves stub_status: the exporter waits
        stopped = subprocess.run(["podman", "stop", "-t", "10", name], capture_output=True,
                                 timeout=60)
        code = subprocess.run(["podman", "inspect", name, "--format", "{{.State.ExitCode}}"],
                              capture_output=True, text=True, timeout=30).stdout.strip()
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True, timeout=60)
    assert stopped.returncode == 0 and code == "0"


def test_mtail_programs_reload_when_their_configmap_changes(tmp_path: Path) -> None:
    """A kubelet-style `..data` swap of the programs dir: the new program is compiled, then
    loaded by SIGHUP; a program that does not compile leaves the running ones (and counts)."""
    (image,) = images.build(["metrics-adapter"], registry=None, tag=None, push=False,
                            quiet=True, say=lambda _: None)
    programs, logs = tmp_path / "programs", tmp_path / "logs"
    for folder in (programs, logs):
        folder.mkdir()
        folder.chmod(0o777)
    tmp_path.chmod(0o755)
    first = b"counter first_total\n/x/ {\n  first_total++\n}\n"
    second = b"counter second_total\n/y/ {\n  second_total++\n}\n"
    kubelet_update(programs, {"a.mtail": first})
    name = f"metrics-adapter-reload-{os.getpid()}"
    subprocess.run(["podman", "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp",
                    "-v", f"{programs}:/etc/metrics-adapter/programs:ro",
                    "-v", f"{logs}:/var/log/app", "-e", "METRICS_ADAPTER_ADAPTER=logs",
                    "-e", "METRICS_ADAPTER_WATCH_INTERVAL=0.5", image],
                   check=True, capture_output=True, timeout=60)

    def metrics(port: int) -> str:
        return subprocess.run(
            ["podman", "exec", name, "python3", "-c", "import urllib.request as u; print(u."
             f"urlopen('http://127.0.0.1:{port}/metrics').read().decode())"],
            capture_output=True, text=True, timeout=30).stdout

    try:
        wait_for("mtail with the first program", lambda: "first_total" in metrics(3903), 60)
        kubelet_update(programs, {"a.mtail": first, "b.mtail": second})
        wait_for("the second program, loaded", lambda: "second_total" in metrics(3903), 30)
        kubelet_update(programs, {"a.mtail": first, "b.mtail": b"counter broken {\n"})
        wait_for("the failed reload counted",
                 lambda: 'engine_supervisor_reload_failures_total{engine="mtail"} 1'
                 in metrics(9899), 30)
        after = metrics(3903)
        # The supervisor logs the refusal just after it counted it.
        log = wait_for("the refusal in the log", lambda: "not reloading" in (out := subprocess.run(
            ["podman", "logs", name], capture_output=True, text=True, timeout=30).stderr)
            and out, 30)
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True, timeout=60)
    assert "first_total" in after and "second_total" in after
    assert "not reloading, mtail keeps its running config" in log
