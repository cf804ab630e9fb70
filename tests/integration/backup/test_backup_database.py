"""A consistent database backup: MariaDB from Debian (the ssh example's image) as the app, its
dump streamed by the sidecar over 127.0.0.1 into a snapshot; the database is dropped and
loaded back from that snapshot with a real client. A dump that fails fails the run and leaves
no dump snapshot behind."""

from __future__ import annotations

from typing import Any

import bk_support as bk
from pods import RunningPod, running, stack_documents
from support import wait_for

MARIADB_IMAGE = "localhost/sidecar-patterns-examples/mariadb:10.11-bookworm"
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


def _docs(name: str, dump_password: str) -> list[dict[str, Any]]:
    stack = bk.stack(name, {"repository": "local", "host": name, "dataPath": "/var/lib/mysql",
                            "uid": 999, "gid": 999, "dumpCommand": DUMP,
                            "credentialsSecret": f"{name}-db"})
    stack["spec"]["app"] = {"image": MARIADB_IMAGE, "imagePullPolicy": "IfNotPresent",
                            "command": ["sh", "-c", START],
                            "securityContext": {"runAsUser": 999, "runAsGroup": 999}}
    return [bk.secret(f"{name}-password", {"password": bk.PASSWORD}),
            bk.secret(f"{name}-db", {"MYSQL_PWD": dump_password}),
            *stack_documents(stack, bk.CATALOGUE)]


def _sql(pod: RunningPod, app: str, statement: str) -> str:
    """A real client in the app's container, over its socket."""
    return bk.exec_in(pod.container(app), "mariadb", SOCKET, "-N", "-e", statement).strip()


def test_dump_snapshot_restores_dropped_rows(backup_image: str) -> None:
    name = bk.unique("bk-db")
    with running(_docs(name, "dump-pw")) as (pod,):
        wait_for("MariaDB", lambda: "db ready" in pod.logs(name), 120)
        rows = ", ".join(f"({i}, 'item {i}')" for i in range(1, 101))
        _sql(pod, name, f"INSERT INTO shop.orders VALUES {rows}")
        code, status = bk.call(pod.container("backup"), "POST", "/run")
        _sql(pod, name, "DROP DATABASE shop")
        gone = _sql(pod, name, "SHOW DATABASES LIKE 'shop'")
        bk.exec_in(pod.container("backup"), "sh", "-c",
                   "restic dump --no-lock latest /dump.sql --path /dump.sql"
                   " | mariadb --host=127.0.0.1 --user=backup")
        back = _sql(pod, name, "SELECT COUNT(*), SUM(id), MAX(item) FROM shop.orders")
    assert code == 200 and isinstance(status, dict), (code, status)
    assert status["dumps"] == 1 and status["lastDumpBytes"] > 3000, status
    assert gone == ""
    assert back.split("\t") == ["100", "5050", "item 99"], back


def test_a_failed_dump_fails_the_run_and_keeps_no_dump_snapshot(backup_image: str) -> None:
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
