"""The webhook from its own image, deployed as `pattern webhook manifests` deploys it: the
Deployment's pod and its TLS Secret run with `pattern run` (probes over HTTPS, read-only root,
uid 65532), and a review sent to it, verified against the caBundle, gets the same patch the
in-process server gives."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml
from admission import Client, api_server_pod, review_of
from pods import ensure_images, running
from support import CATALOGUE, free_port, run_pattern, wait_for

from generator.runner.runtime import Runtime


@pytest.mark.integration
def test_the_webhook_image_answers_as_its_manifests_deploy_it(runtime: Runtime,
                                                               tmp_path: Path) -> None:
    ensure_images(["webhook"], runtime)
    result = run_pattern("webhook", "manifests", "--replicas", "1", catalogue=CATALOGUE)
    assert result.code == 0, result.stderr
    objects = [d for d in yaml.safe_load_all(result.stdout) if d]
    wanted = [o for o in objects if o["kind"] in ("Secret", "Deployment")]
    config = next(o for o in objects if o["kind"] == "MutatingWebhookConfiguration")
    ca = tmp_path / "ca.crt"
    ca.write_bytes(base64.b64decode(config["webhooks"][0]["clientConfig"]["caBundle"]))
    port = free_port()
    pod = api_server_pod(annotations={"sidecar-patterns.io/inject": "ssh",
                                      "sidecar-patterns.io/set.ssh.authorizedKeysSecret":
                                      "shop-keys"})
    with running(wanted, runtime=runtime, publish={8443: port}, grace=10) as (webhook,):
        client = Client(port, ca)
        wait_for("the webhook ready", lambda: client.request("GET", "/readyz")[0] == 200)
        answer = client.review(review_of(pod, uid="from-the-image"))["response"]
        assert answer["uid"] == "from-the-image" and answer["allowed"] is True
        assert "patch" in answer
        assert client.health()["reviews"] == 1
        client.close()
        # Logged after the answer is sent, and read back through the engine's log pipe.
        wait_for("the review in the log",
                 lambda: '"uid": "from-the-image"' in webhook.logs("webhook"), 30)
