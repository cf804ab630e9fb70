"""The uploads example: files uploaded through the ftp sidecar (ProFTPD) into the folder it
shares with the app produce exactly one CloudEvent each, with the uploaded bytes' sha256."""

from __future__ import annotations

import base64
import ftplib
import hashlib
import io
import time
import uuid
from typing import Any

import yaml
from pods import running, stack_documents
from receiver import Receiver
from support import CATALOGUE, wait_for

from generator import images

EXAMPLE = CATALOGUE / "change-notifier" / "examples" / "uploads.stack.yaml"


def users_secret(name: str, users: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {"users": base64.b64encode(users.encode()).decode()}}


def test_ftp_uploads_are_announced_once_each(receiver: Receiver) -> None:
    images.build(["ftp"], registry=None, tag=None, push=False, quiet=True, say=lambda _: None)
    name = f"cn-ftp-{uuid.uuid4().hex[:6]}"
    stack: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    stack["metadata"]["name"] = name
    docs = [users_secret("shop-ftp-users", "alice:s3cret\n"),
            *stack_documents(stack, CATALOGUE, (f"change-notifier.url={receiver.url}",
                                                "ftp.tls=off"))]
    files = {f"upload-{i}.csv": f"id,value\n{i},{'x' * i * 1000}\n".encode()
             for i in range(1, 6)}
    with running(docs) as (pod,):
        ftp = ftplib.FTP()
        ftp.connect(pod.ip, 2121, timeout=20)
        ftp.login("alice", "s3cret")
        for file, data in files.items():
            ftp.storbinary(f"STOR {file}", io.BytesIO(data))
        ftp.storbinary("STOR half.part", io.BytesIO(b"excluded by the example"))
        ftp.quit()
        source = f"/sidecar-patterns/{name}/change-notifier"
        wait_for("an event per upload", lambda: len(receiver.by_subject(source)) >= 5, 30)
        time.sleep(1.5)  # a second event per upload would arrive now
    events = receiver.by_subject(source)
    assert sorted(events) == sorted(files)
    for file, data in files.items():
        (event,) = events[file]
        assert event.data["sha256"] == hashlib.sha256(data).hexdigest()
        assert event.data["size"] == len(data)
