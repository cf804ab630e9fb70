"""The ssh pattern in pods the generator makes: real OpenSSH and paramiko clients through
published host ports, the app container on the other side of the shared volume."""

from __future__ import annotations

import io
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest
import yaml
from access_support import (
    MARIADB_IMAGE,
    documents,
    example_stack,
    keygen,
    podman_volume_rm,
    secret,
)
from pods import RunningPod, ensure_images, running
from support import CATALOGUE, run_pattern

from generator.runner.runtime import Runtime

KEY_PORT = 24022
PASSWORD_PORT = 24023
DATABASE_PORT = 24025
INJECTED_PORT = 24026
# Deliberately not 1000 or 65532: the sidecar must take whatever uid/gid the app has.
UID, GID = 4321, 4322
APP_FILE = "from-app.txt"
APP_TEXT = "written by the app container\n"
PASSWORD = "correct horse battery staple"
BUSYBOX = "localhost/busybox:1.35-static"

pytestmark = pytest.mark.usefixtures("access_images")


@dataclass(frozen=True)
class Keys:
    client: Path
    wrong: Path
    host: Path

    def host_key(self) -> paramiko.PKey:
        return paramiko.Ed25519Key.from_private_key_file(str(self.host))


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    work = tmp_path_factory.mktemp("sshkeys")
    return Keys(keygen(work / "id_client"), keygen(work / "id_wrong"),
                keygen(work / "ssh_host_ed25519_key"))


def app_stack(name: str, sidecar_values: dict[str, Any]) -> dict[str, Any]:
    """A busybox app as uid UID that writes one file into its data folder."""
    return {
        "apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Stack",
        "metadata": {"name": name},
        "spec": {
            "app": {
                "image": BUSYBOX,
                # The trap lets the app stop at once on SIGTERM, as a real app would.
                "command": ["sh", "-c", f"printf '{APP_TEXT}' > /data/{APP_FILE}; "
                            "trap 'exit 0' TERM; sleep 3600 & wait"],
                "securityContext": {"runAsUser": UID, "runAsGroup": GID},
            },
            "sidecars": [{"pattern": "ssh",
                          "values": {"uid": UID, "gid": GID, **sidecar_values}}],
        },
    }


def connect(port: int, user: str, host_key: paramiko.PKey | None = None,
            **auth: Any) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    if host_key is None:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    else:
        # RejectPolicy: the connection only works if the server shows the Secret's host key.
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.get_host_keys().add(f"[127.0.0.1]:{port}", host_key.get_name(), host_key)
    client.connect("127.0.0.1", port, username=user, look_for_keys=False, allow_agent=False,
                   timeout=10, **auth)
    return client


def owner(pod: RunningPod, container: str, path: str) -> str:
    return pod.exec(container, "stat", "-c", "%u:%g", path).stdout.strip()


@pytest.fixture(scope="module")
def key_pod(keys: Keys) -> Iterator[RunningPod]:
    secrets = [
        secret("r2a-keys", {"authorized_keys": keys.client.with_suffix(".pub").read_text()}),
        secret("r2a-hostkeys", {"ssh_host_ed25519_key": keys.host.read_text()}),
    ]
    stack = app_stack("r2a-ssh", {"authorizedKeysSecret": "r2a-keys",
                                  "hostKeysSecret": "r2a-hostkeys"})
    with running(documents(stack, secrets), publish={2222: KEY_PORT}) as (pod,):
        yield pod


@pytest.fixture
def sftp(key_pod: RunningPod, keys: Keys) -> Iterator[paramiko.SFTPClient]:
    client = connect(KEY_PORT, "app", keys.host_key(), key_filename=str(keys.client))
    try:
        yield client.open_sftp()
    finally:
        client.close()


def openssh(keys: Keys, known_hosts: Path) -> list[str]:
    host = keys.host.with_suffix(".pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{KEY_PORT} {host[0]} {host[1]}\n")
    return ["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "LogLevel=ERROR",
            "-i", str(keys.client)]


def test_sftp_upload_is_the_apps_with_its_uid_and_gid(key_pod: RunningPod,
                                                      sftp: paramiko.SFTPClient) -> None:
    sftp.putfo(io.BytesIO(b"uploaded over sftp\n"), "uploaded.txt")
    sftp.mkdir("incoming")
    sftp.putfo(io.BytesIO(b"nested\n"), "incoming/nested.txt")
    assert key_pod.exec("r2a-ssh", "cat", "/data/uploaded.txt").stdout == "uploaded over sftp\n"
    for path in ("/data/uploaded.txt", "/data/incoming", "/data/incoming/nested.txt"):
        assert owner(key_pod, "r2a-ssh", path) == f"{UID}:{GID}"


def test_sftp_downloads_what_the_app_wrote(sftp: paramiko.SFTPClient) -> None:
    buffer = io.BytesIO()
    sftp.getfo(APP_FILE, buffer)
    assert buffer.getvalue().decode() == APP_TEXT
    assert sftp.stat(APP_FILE).st_uid == UID
    assert sftp.normalize(".") == "/data"


def test_openssh_shell_scp_sftp_and_rsync(key_pod: RunningPod, keys: Keys,
                                          tmp_path: Path) -> None:
    options = openssh(keys, tmp_path / "known_hosts")
    ssh = ["ssh", *options, "-p", str(KEY_PORT)]
    shell = subprocess.run([*ssh, "app@127.0.0.1", "id -u; id -g; id -un; pwd"],
                           capture_output=True, text=True, check=True, timeout=30)
    assert shell.stdout.split() == [str(UID), str(GID), "app", "/data"]
    local = tmp_path / "scp.txt"
    local.write_text("via scp\n")
    subprocess.run(["scp", *options, "-P", str(KEY_PORT), str(local), "app@127.0.0.1:scp.txt"],
                   check=True, timeout=30)
    batch = f"put {local} sftp.txt\nget {APP_FILE} {tmp_path / 'got.txt'}\n"
    subprocess.run(["sftp", *options, "-P", str(KEY_PORT), "-b", "-", "app@127.0.0.1"],
                   input=batch, text=True, check=True, timeout=30, capture_output=True)
    tree = tmp_path / "tree" / "deep"
    tree.mkdir(parents=True)
    (tree / "file.txt").write_text("via rsync\n")
    rsh = " ".join(ssh)
    subprocess.run(["rsync", "-a", "-e", rsh, f"{tmp_path / 'tree'}/", "app@127.0.0.1:rsynced/"],
                   check=True, timeout=60)
    subprocess.run(["rsync", "-a", "-e", rsh, "app@127.0.0.1:rsynced/", f"{tmp_path / 'back'}/"],
                   check=True, timeout=60)
    assert key_pod.exec("r2a-ssh", "cat", "/data/scp.txt", "/data/sftp.txt",
                        "/data/rsynced/deep/file.txt").stdout == "via scp\n" * 2 + "via rsync\n"
    for path in ("scp.txt", "sftp.txt", "rsynced/deep/file.txt"):
        assert owner(key_pod, "r2a-ssh", f"/data/{path}") == f"{UID}:{GID}"
    assert (tmp_path / "got.txt").read_text() == APP_TEXT
    assert (tmp_path / "back" / "deep" / "file.txt").read_text() == "via rsync\n"


def test_wrong_key_is_refused(key_pod: RunningPod, keys: Keys) -> None:
    with pytest.raises(paramiko.AuthenticationException):
        connect(KEY_PORT, "app", keys.host_key(), key_filename=str(keys.wrong))


def test_password_is_refused_when_no_password_secret(key_pod: RunningPod, keys: Keys) -> None:
    with pytest.raises(paramiko.BadAuthenticationType) as refused:
        connect(KEY_PORT, "app", keys.host_key(), password=PASSWORD)
    assert refused.value.allowed_types == ["publickey"]


def test_root_is_refused_even_with_the_right_key(key_pod: RunningPod, keys: Keys) -> None:
    with pytest.raises(paramiko.AuthenticationException):
        connect(KEY_PORT, "root", keys.host_key(), key_filename=str(keys.client))
    assert "User root from" in key_pod.logs("ssh")


def test_forwarding_is_refused_and_the_app_is_out_of_sight(key_pod: RunningPod,
                                                           keys: Keys) -> None:
    client = connect(KEY_PORT, "app", keys.host_key(), key_filename=str(keys.client))
    try:
        transport = client.get_transport()
        assert transport is not None
        with pytest.raises(paramiko.ChannelException):
            transport.open_channel("direct-tcpip", ("127.0.0.1", 2222), ("127.0.0.1", 0))
        # Storage is shared, processes are not (no shareProcessNamespace): no `sleep 3600`.
        _, stdout, _ = client.exec_command("ps -eo args")
        assert "sleep 3600" not in stdout.read().decode()
    finally:
        client.close()


def test_the_probe_command_fails_on_a_wrong_port(key_pod: RunningPod) -> None:
    wrong = key_pod.exec("ssh", "ssh-sidecar", "healthcheck", "--port", "2223", check=False)
    assert wrong.returncode == 1 and "unhealthy" in wrong.stderr


def test_password_secret_turns_password_login_on(keys: Keys, runtime: Runtime) -> None:
    """The pattern's own end-to-end check, run on each engine."""
    ensure_images(["ssh"], runtime)
    secrets = [secret("r2a-password", {"password": PASSWORD + "\n"})]
    trial_key = keys.client.with_suffix(".pub").read_text().strip()
    stack = app_stack("r2a-ssh-pw", {"user": "mysql", "passwordSecret": "r2a-password",
                                     "authorizedKeys": trial_key})
    # A real grace period: `down` then waits for sshd to handle SIGTERM.
    with running(documents(stack, secrets), publish={2222: PASSWORD_PORT}, grace=10,
                 runtime=runtime) as (pod,):
        assert "ephemeral host keys" in pod.logs("ssh")  # no hostKeysSecret: warned
        client = connect(PASSWORD_PORT, "mysql", password=PASSWORD)
        with client, client.open_sftp() as sftp:
            sftp.putfo(io.BytesIO(b"pw\n"), "by-password.txt")
        assert owner(pod, "r2a-ssh-pw", "/data/by-password.txt") == f"{UID}:{GID}"
        with connect(PASSWORD_PORT, "mysql", key_filename=str(keys.client)):
            pass  # the inline trial key works alongside
        for user, given in (("mysql", "wrong password"), ("root", PASSWORD)):
            with pytest.raises(paramiko.AuthenticationException):
                connect(PASSWORD_PORT, user, password=given)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 5, "sshd did not stop promptly on SIGTERM"


@pytest.fixture
def database_volume() -> Iterator[str]:
    # The example's PersistentVolumeClaim: podman makes it a named volume that outlives the pod.
    podman_volume_rm("database-data")
    yield "database-data"
    podman_volume_rm("database-data")


def test_database_example_data_dir_over_ssh(keys: Keys, database_volume: str) -> None:
    stack = example_stack("ssh", "database")
    assert stack["spec"]["app"]["image"] == MARIADB_IMAGE
    stack["metadata"]["name"] = "r2a-database"  # only the pod's name changes
    secrets = [
        secret("database-ssh-keys",
               {"authorized_keys": keys.client.with_suffix(".pub").read_text()}),
        secret("database-ssh-host-keys", {"ssh_host_ed25519_key": keys.host.read_text()}),
    ]
    with running(documents(stack, secrets), publish={2222: DATABASE_PORT},
                 timeout=180) as (pod,):
        app = "r2a-database"
        pod.exec(app, "mariadb", "--socket=/run/mysqld/mysqld.sock", "-e",
                 "CREATE DATABASE shop")
        client = connect(DATABASE_PORT, "mysql", keys.host_key(), key_filename=str(keys.client))
        with client, client.open_sftp() as sftp:
            assert sftp.normalize(".") == "/var/lib/mysql"
            listing = {entry.filename: entry for entry in sftp.listdir_attr(".")}
            assert {"mysql", "shop", "ibdata1"} <= set(listing)
            assert listing["shop"].st_uid == 999 and listing["ibdata1"].st_uid == 999
            buffer = io.BytesIO()
            sftp.getfo("shop/db.opt", buffer)
            assert b"default-character-set" in buffer.getvalue()
            sftp.putfo(io.BytesIO(b"SELECT 1;\n"), "restore.sql")
        assert owner(pod, app, "/var/lib/mysql/restore.sql") == "999:999"
        result = pod.exec(app, "sh", "-c", "mariadb --socket=/run/mysqld/mysqld.sock -N "
                          "< /var/lib/mysql/restore.sql")
        assert result.stdout == "1\n"


# The source document's core case as a user meets it: their own MariaDB StatefulSet, whose data
# directory is already a volume (a claim template), gets ssh access by `pattern inject` alone.
USER_STATEFULSET = f"""\
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: r2a-db
spec:
  serviceName: r2a-db
  selector:
    matchLabels: {{app: r2a-db}}
  template:
    metadata:
      labels: {{app: r2a-db}}
    spec:
      securityContext: {{fsGroup: 999}}
      containers:
        - name: mariadb
          image: {MARIADB_IMAGE}
          command: [sh, -c, "test -d /var/lib/mysql/mysql || mariadb-install-db --user=mysql
            --datadir=/var/lib/mysql --skip-test-db > /dev/null; exec mariadbd
            --datadir=/var/lib/mysql --socket=/run/mysqld/mysqld.sock --bind-address=127.0.0.1"]
          securityContext: {{runAsUser: 999, runAsGroup: 999}}
          readinessProbe:
            exec: {{command: [mariadb-admin, --socket=/run/mysqld/mysqld.sock, ping]}}
            periodSeconds: 2
          volumeMounts:
            - {{name: data, mountPath: /var/lib/mysql}}
  volumeClaimTemplates:
    - metadata: {{name: data}}
      spec:
        accessModes: [ReadWriteOnce]
        resources: {{requests: {{storage: 1Gi}}}}
"""


@pytest.fixture
def claim_volume() -> Iterator[str]:
    podman_volume_rm("data-r2a-db-0")
    yield "data-r2a-db-0"
    podman_volume_rm("data-r2a-db-0")


def test_inject_into_a_statefulset_shares_its_data_volume_over_sftp(keys: Keys,
                                                                     claim_volume: str) -> None:
    injected = run_pattern("inject", "-f", "-", "--with", "ssh", "--set", "ssh.user=mysql",
                           "--set", "ssh.uid=999", "--set", "ssh.gid=999",
                           "--set", "ssh.dataPath=/var/lib/mysql",
                           "--set", "ssh.authorizedKeysSecret=r2a-db-keys",
                           "--set", "ssh.hostKeysSecret=r2a-db-hostkeys",
                           stdin=USER_STATEFULSET, catalogue=CATALOGUE)
    assert injected.code == 0, injected.stderr
    assert "shares volume 'data'" in injected.stderr  # the note says which volume
    (workload,) = [d for d in yaml.safe_load_all(injected.stdout) if d]
    spec = workload["spec"]["template"]["spec"]
    assert "data" not in {v["name"] for v in spec["volumes"]}, "the claim stays the data volume"
    (ssh,) = spec["initContainers"]
    assert {"name": "data", "mountPath": "/var/lib/mysql"} in ssh["volumeMounts"]
    secrets = [
        secret("r2a-db-keys", {"authorized_keys": keys.client.with_suffix(".pub").read_text()}),
        secret("r2a-db-hostkeys", {"ssh_host_ed25519_key": keys.host.read_text()}),
    ]
    with running([*secrets, workload], publish={2222: INJECTED_PORT}, timeout=180) as (pod,):
        assert pod.name == "r2a-db-0"
        pod.exec("mariadb", "mariadb", "--socket=/run/mysqld/mysqld.sock", "-e",
                 "CREATE DATABASE orders")
        client = connect(INJECTED_PORT, "mysql", keys.host_key(), key_filename=str(keys.client))
        with client, client.open_sftp() as sftp:
            assert {"mysql", "orders", "ibdata1"} <= set(sftp.listdir("/var/lib/mysql"))
            buffer = io.BytesIO()
            sftp.getfo("/var/lib/mysql/orders/db.opt", buffer)
            assert b"default-character-set" in buffer.getvalue()
