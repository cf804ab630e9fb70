"""The pattern's copy-paste example runs as the README shows, against `rclone serve restic`."""

from __future__ import annotations

from typing import Any

import bk_support as bk
import yaml
from pods import running, stack_documents
from support import wait_for

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
