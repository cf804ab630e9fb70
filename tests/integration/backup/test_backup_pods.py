"""The backup pattern in pods generated from it: snapshots of the app's data volume to a local
repository volume and to a real restic REST server (`rclone serve restic`), retention, and a
restore into a new pod's empty volume that gives back every file byte for byte; a wrong
password or an unreachable repository is a counted failure, never a snapshot."""

from __future__ import annotations

from typing import Any

import bk_support as bk
from pods import RunningPod, running, stack_documents
from support import wait_for


def _docs(name: str, values: dict[str, Any], volumes: dict[str, Any] | None = None,
          password: str = bk.PASSWORD) -> list[dict[str, Any]]:
    return [bk.secret(f"{name}-password", {"password": password}),
            *stack_documents(bk.stack(name, values, volumes), bk.CATALOGUE)]


def _app_ready(pod: RunningPod, name: str) -> None:
    wait_for("the app", lambda: "app ready" in pod.logs(name), 60)


def _snapshot_now(sidecar: str) -> dict[str, Any]:
    code, body = bk.call(sidecar, "POST", "/run")
    assert code == 200 and isinstance(body, dict), (code, body)
    return body


def _restore_into_a_new_pod(name: str, values: dict[str, Any],
                            volumes: dict[str, Any] | None = None) -> dict[str, list[str]]:
    """A new pod with an empty data volume and restore on: what its volume holds."""
    with running(_docs(name, {**values, "restore": True}, volumes)) as (pod,):
        sidecar = pod.container("backup")
        _app_ready(pod, name)
        said = pod.logs("backup")
        restored = bk.hashes(sidecar)
    assert "restored snapshot latest into /data" in said, said
    return restored


def test_local_repository_on_a_claim_restores_every_file_byte_for_byte(
        backup_image: str) -> None:
    name = bk.unique("bk-local")
    claim = f"{name}-repo"
    volumes = {"repository": {"persistentVolumeClaim": {"claimName": claim}}}
    values = {"repository": "local", "host": name}
    try:
        with running(_docs(name, values, volumes)) as (pod,):
            sidecar = pod.container("backup")
            _app_ready(pod, name)
            written = bk.hashes(sidecar)
            status = _snapshot_now(sidecar)
        assert status["snapshots"] == 1 and status["failures"] == 0, status
        assert status["lastSnapshotFiles"] == len(written) == 44, status
        assert status["lastSnapshotBytes"] >= 3_000_000 + sum(1000 * (i + 1) for i in range(40))
        restored = _restore_into_a_new_pod(f"{name}-new", {**values}, volumes)
    finally:
        bk.podman("volume", "rm", "-f", claim, check=False)
    assert restored == written  # every file, its bytes and its mode


def test_rest_server_retention_and_restore(backup_image: str, rest_server: str) -> None:
    name = bk.unique("bk-rest")
    values = {"repository": f"rest:http://{rest_server}:8000/{name}", "host": name,
              "keepLast": 2, "keepDaily": 1}
    with running(_docs(name, values)) as (pod,):
        sidecar, app = pod.container("backup"), pod.container(name)
        _app_ready(pod, name)
        ids = []
        for round_ in range(4):
            bk.exec_in(app, "python3", "-c",
                       f"open('/srv/data/round.txt', 'w').write('round {round_}\\n')")
            ids.append(_snapshot_now(sidecar)["lastSnapshotId"])
        status = bk.status(sidecar)
        kept = bk.snapshots(sidecar)
        written = bk.hashes(sidecar)
    assert status["snapshots"] == 4 and status["snapshotsKept"] == 2, status
    # keepLast 2 (and keepDaily 1, the newest of today): the two newest remain.
    assert sorted(s["short_id"] for s in kept) == sorted(ids[2:]), (kept, ids)
    assert {s["hostname"] for s in kept} == {name} and all(s["paths"] == ["/data"] for s in kept)
    assert _restore_into_a_new_pod(f"{name}-new", values) == written
    assert written["round.txt"] == bk.hashes_of_text("round 3\n")


def test_wrong_password_and_unreachable_repository_are_failures(backup_image: str,
                                                                rest_server: str) -> None:
    name = bk.unique("bk-fail")
    repo = f"rest:http://{rest_server}:8000/{name}"
    with running(_docs(name, {"repository": repo, "host": name})) as (pod,):
        _app_ready(pod, name)
        assert _snapshot_now(pod.container("backup"))["snapshots"] == 1  # the repository exists
    wrong = f"{name}-w"
    with running(_docs(wrong, {"repository": repo, "host": name}, password="wrong")) as (pod,):
        sidecar = pod.container("backup")
        _app_ready(pod, wrong)
        first = bk.call(sidecar, "POST", "/run")
        second = bk.call(sidecar, "POST", "/run")
        health = bk.call(sidecar, "GET", "/healthz")
    down = f"{name}-d"
    with running(_docs(down, {"repository": "rest:http://no-such-server:8000/x",
                              "host": name})) as (pod,):
        _app_ready(pod, down)
        unreachable = bk.call(pod.container("backup"), "POST", "/run")
    for code, body in (first, second, unreachable):
        assert code == 500 and isinstance(body, dict), (code, body)
        assert "snapshots" not in body and "lastSnapshotId" not in body, body  # none counted
    assert isinstance(second[1], dict) and "wrong password" in second[1]["lastError"], second
    assert second[1]["consecutiveFailures"] == 2 and not second[1]["healthy"], second
    assert health[0] == 503, health
    assert isinstance(unreachable[1], dict)
    assert "repository" in unreachable[1]["lastError"] and "no such host" in \
        unreachable[1]["lastError"], unreachable
