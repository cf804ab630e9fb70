"""The git-sync pattern in pods generated from the catalogue, around the example node.js app,
against a real git server in a pod of its own."""

from __future__ import annotations

import time
from typing import Any

import pytest
from gitsync_podkit import (
    GITD_IMAGE,
    NODE_IMAGE,
    GitServer,
    host_port,
    http,
    http_json,
    node_app_stack,
    token_secret,
    unique,
)
from gitsync_testkit import git
from pods import ensure_images, present_in, running, stack_documents
from support import CATALOGUE, seconds_until, wait_for

from generator.runner.run import NotReady
from generator.runner.runtime import Runtime

pytestmark = pytest.mark.integration

# A hook item a shell would execute; run as argv it must arrive as plain text.
HOOK = ["python3", "-c",
        "import os, sys; open('/tmp/hook', 'w').write(os.environ['GITSYNC_HASH'] + ' ' + "
        "sys.argv[1])", "$(touch /tmp/pwned)"]


def page(port: int) -> str:
    return http(f"http://127.0.0.1:{port}/")[1]


def serves(port: int, text: str) -> bool:
    return text in page(port)


def liveness_command(documents: list[dict[str, Any]]) -> list[str]:
    app = documents[-1]["spec"]["containers"][0]
    return [str(c) for c in app["livenessProbe"]["exec"]["command"]]


def test_node_app_follows_pushes_hooks_and_a_remote_outage(git_server: GitServer,
                                                           runtime: Runtime) -> None:
    """Native sidecar, symlink publish, period 1s: polling, webhook, exechook, the example's
    restart probe, and a remote that goes away and comes back. On each engine (the git
    server stays on podman; the pod reaches it by IP)."""
    ensure_images(["git-sync"], runtime)
    present_in(runtime, NODE_IMAGE)
    name = unique("shop")
    stack = node_app_stack(name, git_server.url, period="1s", maxFailures=2,
                           exechookCommand=HOOK)
    stack["spec"]["sidecars"][0]["values"].pop("triggerTokenSecret")
    documents = stack_documents(stack, CATALOGUE)
    assert documents[-1]["spec"]["initContainers"][0]["restartPolicy"] == "Always"
    first_commit = git("rev-parse", "HEAD", cwd=git_server.upstream.work)
    app_port, sync_port = host_port(), host_port()
    with running(documents, publish={3000: app_port, 8729: sync_port},
                 runtime=runtime) as (pod,):
        # The app started after the first publish: it never saw an empty directory.
        assert serves(app_port, "version 1")
        started = pod.exec(name, "cat", "/tmp/started-commit").stdout
        assert started.strip().endswith(first_commit)
        assert pod.exec(name, *liveness_command(documents), check=False).returncode == 0

        v2 = git_server.push_page("<h1>version 2</h1>\n")
        took = seconds_until("the condition", lambda: serves(app_port, "version 2"), 60)
        print(f"polling (period 1s): commit visible in the app after {took:.2f}s")

        # Webhook into the app, exechook in the sidecar: once per new commit, with its hash.
        wait_for("the condition",
                 lambda: http_json(f"http://127.0.0.1:{app_port}/-/synced")["commit"] == v2, 30)
        hook = wait_for("the condition", lambda: (out := pod.exec(
            "git-sync", "cat", "/tmp/hook", check=False).stdout).startswith(v2) and out, 30)
        assert hook == f"{v2} $(touch /tmp/pwned)"
        assert pod.exec("git-sync", "test", "-e", "/tmp/pwned", check=False).returncode == 1
        # The example's liveness probe now asks the kubelet to restart node onto the new code.
        assert pod.exec(name, *liveness_command(documents), check=False).returncode == 1

        git_server.stop()
        health = f"http://127.0.0.1:{sync_port}/healthz"
        try:
            wait_for("the condition",
                     lambda: http(health)[0] == 503, 60)  # after maxFailures=2 failed syncs
        except AssertionError:
            raise AssertionError(pod.logs("git-sync")[-3000:]) from None
        assert serves(app_port, "version 2"), "the last good tree must stay published"
        assert http(f"http://127.0.0.1:{sync_port}/readyz")[0] == 200
        status = http_json(f"http://127.0.0.1:{sync_port}/status")
        assert status["last_error_kind"] == "remote_unreachable", status
        assert status["last_commit"] == v2

        v3 = git_server.push_page("<h1>version 3</h1>\n")
        git_server.start()
        wait_for("the condition",
                 lambda: serves(app_port, "version 3"), 60)  # backoff is at most 4s here
        wait_for("the condition", lambda: http(health)[0] == 200, 30)
        assert http_json(f"http://127.0.0.1:{sync_port}/status")["last_commit"] == v3
        # git-sync logs the recovery just after its status turned healthy.
        logs = wait_for("the recovery in the log",
                        lambda: "event=recovered" in (text := pod.logs("git-sync")) and text, 30)
        assert "kind=remote_unreachable" in logs


def test_classic_exchange_mode_syncs_on_an_authenticated_trigger(
        git_server: GitServer) -> None:
    """Classic target: the init container syncs first; exchange publish; POST /sync through a
    published port, period 1h so only the trigger can explain a new page."""
    name = unique("shop")
    stack = node_app_stack(name, git_server.url, period="1h", publish="exchange",
                           triggerTokenSecret=f"{name}-token")
    stack["spec"]["k8sVersion"] = "1.27"
    # readlink is meaningless in exchange mode: drop the symlink-based restart recipe.
    stack["spec"]["app"]["command"] = ["node", "/srv/app/current/server.js"]
    del stack["spec"]["app"]["livenessProbe"]
    documents = [token_secret(f"{name}-token", "s3cret-token"),
                 *stack_documents(stack, CATALOGUE)]
    spec = documents[-1]["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["git-sync-init"]
    app_port, sync_port = host_port(), host_port()
    with running(documents, publish={3000: app_port, 8729: sync_port}) as (pod,):
        assert any("git-sync-init: completed" in line for line in pod.log)
        assert serves(app_port, "version 1")
        # A real directory, not a link, for apps that cannot follow symlinks.
        assert pod.exec(name, "test", "-d", "/srv/app/current", "-a", "!", "-L",
                        "/srv/app/current").returncode == 0

        git_server.push_page("<h1>version 2</h1>\n")
        sync = f"http://127.0.0.1:{sync_port}/sync"
        assert http(sync, "POST")[0] == 401
        assert http(sync, "POST", {"Authorization": "Bearer wrong"})[0] == 403
        time.sleep(1.0)
        assert serves(app_port, "version 1"), "nothing may sync without the trigger"

        assert http(sync, "POST", {"Authorization": "Bearer s3cret-token"})[0] == 202
        # With a 1h period only the trigger can explain the new page.
        took = seconds_until("the condition", lambda: serves(app_port, "version 2"), 30)
        print(f"POST /sync: commit visible in the app after {took:.2f}s")
        assert "s3cret-token" not in pod.logs("git-sync")


def test_a_ref_that_never_existed_keeps_the_app_from_starting(git_server: GitServer) -> None:
    name = unique("shop")
    stack = node_app_stack(name, git_server.url, ref="no-such-branch", maxFailures=1)
    stack["spec"]["k8sVersion"] = "1.27"
    stack["spec"]["sidecars"][0]["values"].pop("triggerTokenSecret")
    documents = stack_documents(stack, CATALOGUE)
    with (pytest.raises(NotReady, match=r"git-sync-init: init container exited 1 .*"
                        r"ref 'no-such-branch' not found on remote"),
          running(documents, timeout=60)):
        pass


@pytest.mark.parametrize("publish", ["symlink", "exchange"])
def test_git_in_the_app_reads_the_published_commit_from_its_own_mount(
        git_server: GitServer, publish: str) -> None:
    """The app mounts the code at /srv/code (git-sync at /git) and runs git as another uid."""
    name = unique("gitapp")
    stack = {
        "apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Stack",
        "metadata": {"name": name},
        "spec": {"kind": "Pod", "app": {
            "image": GITD_IMAGE, "imagePullPolicy": "Never",
            "command": ["sh", "-c", "trap 'exit 0' TERM; sleep infinity & wait"],
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
            # git refuses a checkout another uid owns unless told it is safe; this is pod
            # configuration, the app's image stays as it is.
            "env": [{"name": "GIT_CONFIG_COUNT", "value": "1"},
                    {"name": "GIT_CONFIG_KEY_0", "value": "safe.directory"},
                    {"name": "GIT_CONFIG_VALUE_0", "value": "*"}]},
            "sidecars": [{"pattern": "git-sync", "values": {
                "repo": git_server.url, "path": "/srv/code", "period": "1s",
                "publish": publish}}]},
    }
    with running(stack_documents(stack, CATALOGUE)) as (pod,):
        def app_head() -> str:
            return pod.exec(name, "git", "-C", "/srv/code/current", "rev-parse", "HEAD",
                            check=False).stdout.strip()

        assert app_head() == git("rev-parse", "HEAD", cwd=git_server.upstream.work)
        second = git_server.push_page("<h1>version 2</h1>\n")
        wait_for("the condition", lambda: app_head() == second, 60)
        assert pod.exec(name, "git", "-C", "/srv/code/current", "status", "--porcelain").stdout \
            == "", "the app sees a clean checkout"
