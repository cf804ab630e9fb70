"""A consistent database backup: MariaDB from Debian (the ssh example's image) as the app, its
dump streamed by the sidecar over 127.0.0.1 into a snapshot (restic backup --stdin), to an
sftp repository (OpenSSH) and to `rclone serve restic`; the database is dropped, the pod is
restarted with restore on, the sidecar loads the dump back once MariaDB answers, and the
rows are back, read with a real client. A dump that fails fails the run and leaves no dump
snapshot behind."""

from __future__ import annotations

from typing import Any

import bk_support as bk
import pytest
from pods import RunningPod, cli, ensure_images, present_in, running, stack_documents
from support import wait_for

from generator.runner.runtime import Runtime

MARIADB_IMAGE = bk.MARIADB_IMAGE
SOCKET = "--socket=/run/mysqld/mysqld.sock"
# The example's command, plus an account the sidecar dumps with over TCP (root and mysql
# authenticate by unix socket only) and an empty table.
START = (
    "test -d /var/lib/mysql/mysql || mariadb-install-db --user=mysql --datadir=/var/lib/mysql"
    " --skip-test-db > /dev/null; mariadbd --datadir=/var/lib/mysql " + SOCKET +
    " --bind-address=127.0.0.1 & until mariadb-admin " + SOCKET + " ping > /dev/null 2>&1;"
    " do sleep 0.2; done; mariadb " + SOCKET + " -e \"CREATE USER IF NOT EXISTS"
    " 'backup'@'127.0.0.1' IDENTIFIED BY 'dump-pw'; GRANT ALL ON *.* TO 'backup'@'127.0.0.1';"
    " CREATE DATABASE IF NOT EXISTS shop; CREATE TABLE IF NOT EXISTS shop.orders"
    " (id INT PRIMARY KEY, item VARCHAR(64));\" && echo db ready; wait")
DUMP = ["mariadb-dump", "--host=127.0.0.1", "--user=backup", "--single-transaction",
        "--databases", "shop"]
LOAD = ["mariadb", "--host=127.0.0.1", "--user=backup"]


def _docs(name: str, dump_password: str, values: dict[str, Any] | None = None,
          extra: tuple[dict[str, Any], ...] = (), claim: str = "") -> list[dict[str, Any]]:
    stack = bk.stack(name, {"repository": "local", "host": name, "dataPath": "/var/lib/mysql",
                            "uid": 999, "gid": 999, "dumpCommand": DUMP,
                            "credentialsSecret": f"{name}-db", **(values or {})},
                     {"data": {"persistentVolumeClaim": {"claimName": claim}}} if claim else None)
    stack["spec"]["app"] = {"image": MARIADB_IMAGE, "imagePullPolicy": "IfNotPresent",
                            "command": ["sh", "-c", START],
                            "securityContext": {"runAsUser": 999, "runAsGroup": 999}}
    return [bk.secret(f"{name}-password", {"password": bk.PASSWORD}),
            bk.secret(f"{name}-db", {"MYSQL_PWD": dump_password}), *extra,
            *stack_documents(stack, bk.CATALOGUE)]


def _sql(pod: RunningPod, app: str, statement: str) -> str:
    """A real client in the app's container, over its socket."""
    return bk.exec_in((pod, app), "mariadb", SOCKET, "-N", "-e", statement).strip()


@pytest.fixture(params=["sftp", "rest"])
def repository(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(kind, a fixture's name): the sftp server or the REST server, started once a session."""
    return str(request.param), "sftp_server" if request.param == "sftp" else "rest_server"


def test_dropped_database_comes_back_after_a_restart_with_restore(
        runtime: Runtime, repository: tuple[str, str], backup_image: str, mariadb_image: str,
        request: pytest.FixtureRequest) -> None:
    ensure_images(["backup"], runtime)
    present_in(runtime, MARIADB_IMAGE)
    kind, fixture = repository
    name = bk.unique(f"bk-db-{kind}-{runtime.name[:2]}")
    server = request.getfixturevalue(fixture)
    if kind == "sftp":
        values: dict[str, Any] = {"repository": server.repository(name), "sshSecret": f"{name}-ssh"}
        extra = (server.secret(f"{name}-ssh"),)
    else:
        values = {"repository": f"rest:http://{bk.address_of(server)}:8000/{name}"}
        extra = ()
    claim = f"{name}-data"  # the database's volume outlives its pods, as a claim does
    try:
        with running(_docs(name, "dump-pw", values, extra, claim), runtime=runtime) as (pod,):
            wait_for("MariaDB", lambda: "db ready" in pod.logs(name), 120)
            rows = ", ".join(f"({i}, 'item {i}')" for i in range(1, 101))
            _sql(pod, name, f"INSERT INTO shop.orders VALUES {rows}")
            code, status = bk.call((pod, "backup"), "POST", "/run")
            _sql(pod, name, "DROP DATABASE shop")
            gone = _sql(pod, name, "SHOW DATABASES LIKE 'shop'")
        restart = {**values, "restore": True, "dumpLoadCommand": LOAD}
        with running(_docs(name, "dump-pw", restart, extra, claim), runtime=runtime) as (pod,):
            said = wait_for("the dump load", lambda: "loaded the dump" in pod.logs("backup")
                            and pod.logs("backup"), 180)
            back = _sql(pod, name, "SELECT COUNT(*), SUM(id), MAX(item) FROM shop.orders")
            # The sidecar logs the load, then counts it: wait for the count.
            after = wait_for("the dump load counted", lambda: (
                s := bk.status((pod, "backup"))).get("dumpLoads") and s, 60)
    finally:
        cli("volume", "rm", "-f", claim, runtime=runtime.name)
    assert code == 200 and isinstance(status, dict), (code, status)
    assert status["dumps"] == 1 and status["lastDumpBytes"] > 3000, status
    assert gone == ""
    assert back.split("\t") == ["100", "5050", "item 99"], back
    assert f"loaded the dump of snapshot {status['lastDumpId']}" in said, said
    assert after["dumpLoads"] == 1 and after["dumpLoadedId"] == status["lastDumpId"], after
    assert "dumpLoadsFailed" not in after and after["failures"] == 0, after


def test_a_failed_dump_fails_the_run_and_keeps_no_dump_snapshot(backup_image: str,
                                                                mariadb_image: str) -> None:
    name = bk.unique("bk-dbfail")
    with running(_docs(name, "wrong-pw")) as (pod,):
        wait_for("MariaDB", lambda: "db ready" in pod.logs(name), 120)
        code, status = bk.call(pod.container("backup"), "POST", "/run")
        kept = bk.snapshots(pod.container("backup"))
    assert code == 500 and isinstance(status, dict), (code, status)
    assert "dump failed (exit 2)" in status["lastError"], status
    assert "Access denied" in status["lastError"], status
    assert "dumps" not in status and status["dumpsFailed"] == 1, status
    assert [s["paths"] for s in kept] == [["/data"]], kept  # the files only, no partial dump
