"""HTTPS auth against the real `git http-backend` behind Basic auth: rotation, no leaks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from gitsync_testkit import AuthGitHttpServer, Upstream, running_sidecar
from support import free_port, wait_for


@pytest.fixture
def https_like(tmp_path: Path, upstream: Upstream) -> Iterator[AuthGitHttpServer]:
    server_token = tmp_path / "server-token"
    server_token.write_text("token-one\n")
    server = AuthGitHttpServer(upstream.base, free_port(), "deploy", server_token)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_token_is_reread_on_every_sync(tmp_path: Path, upstream: Upstream,
                                       https_like: AuthGitHttpServer, port: int) -> None:
    password_file = tmp_path / "password"
    password_file.write_text("token-one\n")  # Secrets often end with a newline
    with running_sidecar(tmp_path, https_like.url(), port, "--username", "deploy",
                         "--password-file", str(password_file), "--max-failures", "1") as sc:
        assert sc.read_version() == "v1"
        assert ("deploy", "token-one") in https_like.auth_attempts

        https_like.token_file.write_text("token-two\n")  # the server rotates first
        upstream.commit_and_push()
        wait_for("the condition", lambda: sc.status()["last_error_kind"] == "auth_failed", 30)
        assert sc.request("/healthz")[0] == 503
        assert sc.read_version() == "v1"

        password_file.write_text("token-two\n")  # then the Secret update reaches the pod
        wait_for("the condition", lambda: sc.read_version() == "v2", 30)
        log = sc.log()
        assert "token-one" not in log and "token-two" not in log
        assert "token-one" not in str(sc.status()) and "token-two" not in str(sc.status())


def test_unreadable_password_file_is_a_clear_error(tmp_path: Path,
                                                   https_like: AuthGitHttpServer,
                                                   port: int) -> None:
    missing = tmp_path / "nope"
    with running_sidecar(tmp_path, https_like.url(), port, "--username", "deploy",
                         "--password-file", str(missing), wait_ready=False) as sc:
        wait_for("the condition", lambda: "kind=auth_config" in sc.log(), 30)
        assert f"cannot read --password-file {missing}" in sc.status()["last_error"]
