"""What the backup pattern renders, and bad values stopping `pattern generate` in one line."""

from __future__ import annotations

from typing import Any

import pytest
from support import CATALOGUE, one_error, run_pattern

from generator.catalogue import Catalogue
from generator.compose import compose
from generator.runner.plan import expand_references
from generator.sidecars import SidecarRequest
from generator.stack import Stack

REQUIRED = {"repository": "rest:https://backup.example.org/shop", "passwordSecret": "pw"}


def sidecar(values: dict[str, Any]) -> dict[str, Any]:
    stack = Stack(name="shop", app={"image": "localhost/busybox:latest"},
                  sidecars=(SidecarRequest("backup", "backup", values={**REQUIRED, **values}),))
    pod = next(d for d in compose(stack, Catalogue(CATALOGUE), []) if d["kind"] == "Pod")
    container: dict[str, Any] = pod["spec"]["initContainers"][0]
    return container


def env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def test_a_stable_host_the_password_as_a_file_and_retention_flags() -> None:
    container = sidecar({"keepLast": 3})
    assert env(container) == {
        "RESTIC_REPOSITORY": "rest:https://backup.example.org/shop",
        "RESTIC_PASSWORD_FILE": "/etc/backup/password/password", "BACKUP_DATA_DIR": "/data",
        "BACKUP_HOST": "shop", "BACKUP_INIT": "true", "BACKUP_RESTORE_SNAPSHOT": "latest",
        "BACKUP_INTERVAL": "1h", "BACKUP_MAX_FAILURES": "2", "BACKUP_HTTP_BIND": "0.0.0.0:8735",
        "BACKUP_RESTORE": "false", "BACKUP_KEEP_LAST": "3", "BACKUP_KEEP_DAILY": "7",
        "BACKUP_KEEP_WEEKLY": "4", "BACKUP_DUMP_NAME": "dump.sql"}
    assert "envFrom" not in container and "args" not in container


def test_the_dump_command_is_an_argv_of_flags_no_shell() -> None:
    hostile = "--result-file=/tmp/x; rm -rf / $(id) `id`"
    container = sidecar({"dumpCommand": ["mariadb-dump", "--host=127.0.0.1", hostile]})
    # as the container sees them, after the kubelet's $(VAR) expansion
    seen = [expand_references(a, {}) for a in container["args"]]
    assert seen == ["run", "--dump-arg=mariadb-dump", "--dump-arg=--host=127.0.0.1",
                    f"--dump-arg={hostile}"]


def test_local_uses_the_repository_volume_and_credentials_come_from_a_secret() -> None:
    container = sidecar({"repository": "local", "credentialsSecret": "s3-keys"})
    assert env(container)["RESTIC_REPOSITORY"] == "/var/lib/backup/repository"
    assert container["envFrom"] == [{"secretRef": {"name": "s3-keys"}}]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/backup/password"]["readOnly"] is True
    assert "/var/lib/backup/repository" in mounts and "/data" in mounts


APP = ("--name", "shop", "--app-image", "localhost/busybox:latest", "--with", "backup")


@pytest.mark.parametrize(("sets", "message"), [
    (["dataPath=srv/data"], "backup.dataPath: "),
    (["repository=ftp://backup.example.org/shop"],
     "must be local, rest:http(s)://host:port/path, sftp:user@host:/path, "
     "sftp://user@host:port//path or s3:https://host/bucket/path"),
    (["repository=/mnt/backups"], "must be local, rest:http(s)://host:port/path"),
    (["keepDaily=0"], "backup.keepDaily: "),
    (["keepLast=-1"], "backup.keepLast: "),
    (["every=30s"], "backup.every: "),
    (["repository=rest:https://admin:hunter2@backup.example.org/shop"],
     "credentials given inline in the URL"),
    (["password=hunter2"], "backup.password: unknown parameter"),
    (["restoreSnapshot=yesterday"], "must be latest or a snapshot id"),
    (["repository=sftp://backup:hunter2@backup.example.org:2222//srv/shop", "sshSecret=k"],
     "a password in the sftp URL"),
    (["repository=sftp:backup:hunter2@backup.example.org:/srv/shop", "sshSecret=k"],
     "a password in the sftp URL"),
    (["repository=sftp:backup@backup.example.org:/srv/shop"],
     "an sftp repository needs sshSecret"),
    (["repository=sftp:backup.example.org:/srv/shop", "sshSecret=k"],
     "sftp:user@host:/path"),
])
def test_bad_values_stop_generate_in_one_line(sets: list[str], message: str) -> None:
    args = [a for s in sets for a in ("--set", f"backup.{s}")]
    base = [a for k, v in REQUIRED.items() if f"{k}=" not in " ".join(sets)
            for a in ("--set", f"backup.{k}={v}")]
    error = one_error(run_pattern("generate", *APP, *base, *args, catalogue=CATALOGUE))
    assert error.startswith("error: ") and message in error, error


def test_the_password_secret_is_required() -> None:
    error = one_error(run_pattern("generate", *APP, "--set", "backup.repository=local",
                                  catalogue=CATALOGUE))
    assert "passwordSecret" in error, error


def test_sftp_takes_the_key_and_known_hosts_from_a_secret() -> None:
    url = "sftp://backup@backup.example.org:2222//srv/shop"
    container = sidecar({"repository": url, "sshSecret": "shop-ssh"})
    assert env(container)["RESTIC_REPOSITORY"] == url
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/backup/ssh"]["readOnly"] is True
    short = sidecar({"repository": "sftp:backup@backup.example.org:/srv/shop",
                     "sshSecret": "shop-ssh"})
    assert env(short)["RESTIC_REPOSITORY"] == "sftp:backup@backup.example.org:/srv/shop"


def test_the_dump_loader_is_passed_only_with_restore_on() -> None:
    values = {"dumpCommand": ["mariadb-dump"], "dumpLoadCommand": ["mariadb", "--host=127.0.0.1"]}
    assert sidecar(values)["args"] == ["run", "--dump-arg=mariadb-dump"]
    pod_args = sidecar({**values, "restore": True})["args"]
    assert pod_args == ["run", "--dump-arg=mariadb-dump", "--load-arg=mariadb",
                        "--load-arg=--host=127.0.0.1"]
