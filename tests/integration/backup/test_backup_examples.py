"""The pattern's copy-paste example runs as the README shows, against `rclone serve restic`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bk_support as bk
import yaml
from access_support import keygen
from pods import RunningPod, cli, running, stack_documents
from support import wait_for

from generator import images

EXAMPLES = bk.CATALOGUE / "backup" / "examples"


def test_uploads_to_rest_server_example(backup_image: str, rest_server: str) -> None:
    name = bk.unique("bk-ex")
    stack: dict[str, Any] = yaml.safe_load(
        (EXAMPLES / "uploads-to-rest-server.stack.yaml").read_text())
    stack["metadata"]["name"] = name
    repository = f"rest:http://{rest_server}:8000/{name}"
    docs = [bk.secret("shop-backup-password", {"password": "trial-password"}),
            *stack_documents(stack, bk.CATALOGUE, (f"backup.repository={repository}",))]
    with running(docs) as (pod,):
        sidecar = pod.container("backup")
        said = wait_for("the restore step",
                        lambda: "restore:" in pod.logs("backup") and pod.logs("backup"), 60)
        wait_for("the first upload", lambda: bk.hashes(sidecar), 60)
        code, status = bk.call(sidecar, "POST", "/run")
    assert "no snapshot of /data by host" in said, said  # a new repository: starts empty
    assert code == 200 and isinstance(status, dict), (code, status)
    assert status["snapshots"] == 1 and status["lastSnapshotFiles"] >= 1, status
    assert status["snapshotsKept"] == 1 and status["failures"] == 0, status


def test_database_with_backups_example(backup_image: str, mariadb_image: str,
                                       sftp_server: bk.SftpServer, tmp_path: Path) -> None:
    """The ssh example's MariaDB with ssh + backup, as the README shows: rows, a dump to an sftp
    server, the database dropped, a restart with restore on, the rows back."""
    images.build(["ssh"], registry=None, tag=None, push=False, quiet=True, say=print)
    stack: dict[str, Any] = yaml.safe_load(
        (EXAMPLES / "database-with-backups.stack.yaml").read_text())
    name = bk.unique("bk-exdb")
    stack["metadata"]["name"] = name
    claim = f"{name}-data"
    stack["spec"]["sidecars"][0]["volumes"]["data"]["persistentVolumeClaim"]["claimName"] = claim
    client, host = keygen(tmp_path / "id_admin"), keygen(tmp_path / "ssh_host_ed25519_key")
    secrets = [
        bk.secret("database-ssh-keys", {"authorized_keys": client.with_suffix(".pub").read_text()}),
        bk.secret("database-ssh-host-keys", {"ssh_host_ed25519_key": host.read_text()}),
        bk.secret("database-backup-password", {"password": bk.PASSWORD}),
        sftp_server.secret("database-backup-ssh"),
        bk.secret("database-dump", {"MYSQL_PWD": "dump-pw"}),
    ]
    repository = f"backup.repository={sftp_server.repository(name)}"

    def sql(pod: RunningPod, statement: str) -> str:
        return pod.exec(name, "mariadb", "--socket=/run/mysqld/mysqld.sock", "-N", "-e",
                        statement).stdout.strip()

    try:
        docs = [*secrets, *stack_documents(stack, bk.CATALOGUE, (repository,))]
        with running(docs, timeout=180) as (pod,):
            sql(pod, README_ACCOUNT)
            sql(pod, "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY);"
                     " INSERT INTO shop.orders VALUES (1), (2), (3)")
            code, status = bk.call((pod, "backup"), "POST", "/run")
            sql(pod, "DROP DATABASE shop")
        restart = (repository, "backup.restore=true")
        docs = [*secrets, *stack_documents(stack, bk.CATALOGUE, restart)]
        with running(docs, timeout=180) as (pod,):
            wait_for("the dump load", lambda: "loaded the dump" in pod.logs("backup"), 180)
            back = sql(pod, "SELECT COUNT(*), SUM(id) FROM shop.orders")
    finally:
        cli("volume", "rm", "-f", claim)
    assert code == 200 and isinstance(status, dict), (code, status)
    assert status["dumps"] == 1 and status["snapshots"] == 1, status
    assert back.split("\t") == ["3", "6"], back


# The account the README tells the user to create once (the sidecar dumps and loads with it).
README_ACCOUNT = ("CREATE USER 'backup'@'127.0.0.1' IDENTIFIED BY 'dump-pw';"
                  " GRANT ALL ON *.* TO 'backup'@'127.0.0.1'")
