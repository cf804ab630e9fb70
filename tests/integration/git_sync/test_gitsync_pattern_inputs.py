"""Bad git-sync values are refused by `pattern generate` with one clear line, before any pod."""

from __future__ import annotations

import pytest
import yaml
from support import CATALOGUE, run_pattern

BASE = ("generate", "--name", "shop", "--app-image", "node:20-bookworm-slim",
        "--with", "git-sync")
REPO = "git-sync.repo=https://git.example.org/shop.git"


@pytest.mark.parametrize(("sets", "message"), [
    (["git-sync.repo=not a url"], "error: git-sync.repo: 'not a url' is not a git URL"),
    (["git-sync.repo=ftp://git.example.org/shop.git"], "is not a git URL"),
    ([REPO, "git-sync.ref=HEAD~1"], "error: git-sync.ref: 'HEAD~1' must be a branch, a tag"),
    ([REPO, "git-sync.ref=abc1234"], "abbreviated hashes and expressions"),
    ([REPO, "git-sync.ref=main..dev"], "must be a branch, a tag"),
    ([REPO, "git-sync.period=500ms"], "error: git-sync.period: 500ms is below the floor of 1s"),
    ([REPO, "git-sync.period=often"], "error: git-sync.period: 'often' is not a duration"),
    ([REPO, "git-sync.path=srv/app"], "error: git-sync.path: 'srv/app' is not an absolute path"),
    ([REPO, "git-sync.link=../up"], "error: git-sync.link: '../up' must be a plain file name"),
    ([REPO, "git-sync.sparseCheckout=/a,b/"], None),  # two items: accepted
    ([REPO, "git-sync.webhookUrl=localhost:3000"], "must be an http:// or https:// URL"),
    ([REPO, "git-sync.authSecret=Bad_Name"], "error: git-sync.authSecret: 'Bad_Name' is not a DNS"),
])
def test_bad_values_are_one_clear_line(sets: list[str], message: str | None) -> None:
    result = run_pattern(*BASE, *(a for s in sets for a in ("--set", s)), catalogue=CATALOGUE)
    if message is None:
        assert result.code == 0, result.stderr
        return
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr


def test_good_refs_render_verbatim() -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    for ref in ("main", "v1.2.0", "refs/heads/release/2024", "20240101", commit):
        result = run_pattern(*BASE, "--set", REPO, "--set", f"git-sync.ref={ref}",
                             catalogue=CATALOGUE)
        assert result.code == 0, result.stderr
        pod = list(yaml.safe_load_all(result.stdout))[-1]
        env = {e["name"]: e.get("value") for e in pod["spec"]["initContainers"][0]["env"]}
        assert env["GITSYNC_REF"] == ref


def test_classic_target_gets_a_one_shot_init_container_without_hooks() -> None:
    result = run_pattern(*BASE, "--set", REPO, "--k8s-version", "1.27",
                         "--set", "git-sync.webhookUrl=http://localhost:3000/-/synced",
                         catalogue=CATALOGUE)
    assert result.code == 0, result.stderr
    spec = list(yaml.safe_load_all(result.stdout))[-1]["spec"]
    init = spec["initContainers"][0]
    env = {e["name"]: e.get("value") for e in init["env"]}
    assert init["name"] == "git-sync-init"
    assert env["GITSYNC_ONE_TIME"] == "true" and env["GITSYNC_HTTP_BIND"] == "off"
    assert "GITSYNC_WEBHOOK_URL" not in env
    sidecar = next(c for c in spec["containers"] if c["name"] == "git-sync")
    assert {e["name"] for e in sidecar["env"]} >= {"GITSYNC_WEBHOOK_URL", "GITSYNC_REPO"}


def test_credentials_come_from_the_named_secrets_only() -> None:
    result = run_pattern(*BASE, "--set", "git-sync.repo=git@git.example.org:shop/app.git",
                         "--set", "git-sync.sshKeySecret=shop-git-ssh",
                         "--set", "git-sync.authSecret=shop-git-https",
                         "--set", "git-sync.triggerTokenSecret=shop-sync-token",
                         catalogue=CATALOGUE)
    assert result.code == 0, result.stderr
    spec = list(yaml.safe_load_all(result.stdout))[-1]["spec"]
    secrets = {v["name"]: v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
    assert sorted(secrets.values()) == ["shop-git-https", "shop-git-ssh", "shop-sync-token"]
    sidecar = spec["initContainers"][0]
    env = {e["name"]: e for e in sidecar["env"]}
    assert env["GITSYNC_USERNAME"]["valueFrom"]["secretKeyRef"] == {
        "name": "shop-git-https", "key": "username"}
    mounts = {m["mountPath"]: m["name"] for m in sidecar["volumeMounts"]}
    for variable in ("GITSYNC_PASSWORD_FILE", "GITSYNC_SSH_KEY_FILE", "GITSYNC_KNOWN_HOSTS_FILE",
                     "GITSYNC_TRIGGER_TOKEN_FILE"):
        folder = env[variable]["value"].rsplit("/", 1)[0]
        assert mounts[folder] in secrets, variable
    assert "shop-git" not in " ".join(sidecar.get("args", []))
