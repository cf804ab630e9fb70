"""A pod the webhook injected runs: the API server's pod, patched with the webhook's JSONPatch
(applied by the jsonpatch library), runs with `pattern run` on podman and Docker, and a real
ssh client reaches the app's files through the sidecar it got."""

from __future__ import annotations

import io
import os
from pathlib import Path

import paramiko
import pytest
from access_support import keygen, secret
from admission import Client, Tls, api_server_pod, patched, review_of, serving
from pods import ensure_images, running
from support import free_port

from generator.inject import RECORD_ANNOTATION
from generator.runner.runtime import Runtime
from generator.validate import check_object

BUSYBOX = "localhost/busybox:1.35-static"
UID, GID = 4321, 4322


@pytest.mark.integration
def test_an_injected_pod_runs_and_its_sidecar_serves_the_apps_files(
        runtime: Runtime, tmp_path: Path) -> None:
    ensure_images(["ssh"], runtime)
    tls = Tls.make(tmp_path / "tls")
    client_key = keygen(tmp_path / "id_client")
    host_key = keygen(tmp_path / "ssh_host_ed25519_key")
    name = f"wh-ssh-{runtime.name}-{os.getpid()}"
    pod = api_server_pod(name=name, annotations={
        "sidecar-patterns.io/inject": "ssh",
        "sidecar-patterns.io/set.ssh.authorizedKeysSecret": f"{name}-keys",
        "sidecar-patterns.io/set.ssh.hostKeysSecret": f"{name}-hostkeys",
        "sidecar-patterns.io/set.ssh.uid": str(UID),
        "sidecar-patterns.io/set.ssh.gid": str(GID),
    })
    app = pod["spec"]["containers"][0]
    app.update(image=BUSYBOX, imagePullPolicy="Never",
               command=["sh", "-c", "echo from-app > /data/app.txt; trap 'exit 0' TERM; "
                        "sleep 3600 & wait"],
               securityContext={"runAsUser": UID, "runAsGroup": GID})
    pod["spec"]["terminationGracePeriodSeconds"] = 5
    with serving(tls) as server:
        client = Client(server.server_address[1], tls.ca)
        answer = client.review(review_of(pod))["response"]
        client.close()
    injected = patched(pod, answer)
    assert RECORD_ANNOTATION in injected["metadata"]["annotations"]
    assert check_object(injected, "1.33") == []
    secrets = [
        secret(f"{name}-keys", {"authorized_keys": client_key.with_suffix(".pub").read_text()}),
        secret(f"{name}-hostkeys", {"ssh_host_ed25519_key": host_key.read_text()}),
    ]
    port = free_port()
    with running([*secrets, injected], runtime=runtime, publish={2222: port}) as (running_pod,):
        assert running_pod.running("ssh")
        ssh = paramiko.SSHClient()
        ssh.set_missing_host_key_policy(paramiko.RejectPolicy())
        key = paramiko.Ed25519Key.from_private_key_file(str(host_key))
        ssh.get_host_keys().add(f"[127.0.0.1]:{port}", key.get_name(), key)
        ssh.connect("127.0.0.1", port, username="app", key_filename=str(client_key),
                    look_for_keys=False, allow_agent=False, timeout=10)
        with ssh, ssh.open_sftp() as sftp:
            buffer = io.BytesIO()
            sftp.getfo("/data/app.txt", buffer)
            assert buffer.getvalue() == b"from-app\n"
            assert sftp.stat("/data/app.txt").st_uid == UID

