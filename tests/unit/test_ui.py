"""`pattern ui` without a browser: what its pages show is what the commands write, byte for
byte, and bad input is a clear message with a 4xx, never a 500.

The same pages in a real browser (the live preview, the screenshots) are in tests/browser.
"""

from __future__ import annotations

import html
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import ROOT, run_pattern
from ui_inputs import DATABASE_APP, DATABASE_CLAIM, DATABASE_SSH, DEPLOYMENT

from generator.catalogue import Catalogue
from generator.web import views
from generator.web.app import create_app, host_name
from generator.web.views import MAX_SIDECARS
from generator.yamlio import MANIFEST_LIMIT

HOST = {"Host": "127.0.0.1:8421"}

DATABASE_FORM = {
    "kind": "Pod", "k8s_version": "1.33", "app_env": "MARIADB_AUTO_UPGRADE=1", **DATABASE_APP,
    "s0-pattern": "ssh", **{f"s0-p-{key}": value for key, value in DATABASE_SSH.items()},
    "s0-v-data": DATABASE_CLAIM,
}
INJECT_FORM = {"manifest": DEPLOYMENT, "s0-pattern": "ssh",
               "s0-p-authorizedKeysSecret": "shop-keys", "s0-p-dataPath": "/usr/share/nginx"}


@pytest.fixture(scope="module")
def client() -> Any:
    return create_app().test_client()


def post(client: Any, url: str, data: dict[str, Any], **kwargs: Any) -> Any:
    return client.post(url, data=data, headers=HOST, **kwargs)


def pre(page: str, element: str) -> str:
    """The text of <pre id=ELEMENT> of a page."""
    match = re.search(rf'<pre id="{element}"[^>]*>(.*?)</pre>', page, re.DOTALL)
    assert match, element
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1)))


def test_composer_preview_is_what_pattern_generate_writes(client: Any, tmp_path: Path) -> None:
    answer = post(client, "/api/compose", DATABASE_FORM).get_json()
    assert answer["ok"], answer
    stack = tmp_path / "database.stack.yaml"
    stack.write_text(answer["stack"], encoding="utf-8")
    generated = run_pattern("generate", "-f", str(stack), catalogue=None)
    assert generated.code == 0, generated.stderr
    assert answer["output"] == generated.stdout
    drawn = run_pattern("diagram", str(stack), catalogue=None)
    assert answer["svg"].startswith("data:image/svg+xml;base64,")
    import base64
    assert base64.b64decode(answer["svg"].split(",", 1)[1]).decode() == drawn.stdout
    assert answer["command"] == "pattern generate -f database.stack.yaml --output-file " \
        "database.yaml"


def test_the_flags_only_command_line_writes_the_same(client: Any) -> None:
    form = {key: value for key, value in DATABASE_FORM.items() if key != "s0-v-data"}
    form.update({"kind": "StatefulSet", "replicas": "1", "app_ports": "3306",
                 "s1-pattern": "log-rotate", "s1-name": "rotate"})
    answer = post(client, "/api/compose", form).get_json()
    assert answer["ok"], answer
    words = shlex.split(answer["flags"])
    assert words[:2] == ["pattern", "generate"] and words[-2:] == ["--output-file",
                                                                    "database.yaml"]
    generated = run_pattern(*words[1:-2], catalogue=None)
    assert generated.code == 0, generated.stderr
    assert generated.stdout == answer["output"]
    with_claim = post(client, "/api/compose", DATABASE_FORM).get_json()
    assert with_claim["flags"].startswith("(a sidecar volume from a claim needs the stack")


def test_without_javascript_the_form_post_shows_the_same(client: Any) -> None:
    live = post(client, "/api/compose", DATABASE_FORM).get_json()
    page = post(client, "/compose", DATABASE_FORM)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert pre(text, "output") == live["output"]
    assert pre(text, "stack") == live["stack"]
    download = post(client, "/compose/download", DATABASE_FORM)
    assert download.get_data(as_text=True) == live["output"]
    assert download.headers["Content-Disposition"] == 'attachment; filename="database.yaml"'


def test_field_messages_are_the_commands_own(client: Any) -> None:
    answer = post(client, "/api/compose", {**DATABASE_FORM, "s0-p-port": "80",
                                           "app_ports": "70000"})
    assert answer.status_code == 422
    errors = answer.get_json()["errors"]
    cli = run_pattern("generate", "--name", "db", "--app-image", "mariadb:11", "--with", "ssh",
                      "--set", "ssh.authorizedKeysSecret=k", "--set", "ssh.port=80",
                      catalogue=None)
    assert errors["f-s0-p-port"] == "ssh.port: 80 is less than the minimum of 1024"
    assert errors["f-s0-p-port"] in cli.stderr
    cli = run_pattern("generate", "--name", "db", "--app-image", "mariadb:11", "--app-port",
                      "70000", catalogue=None)
    assert errors["f-app_ports"] in cli.stderr, (errors, cli.stderr)
    missing = post(client, "/api/compose", {**DATABASE_FORM, "s1-pattern": "git-sync"})
    cli = run_pattern("generate", "--name", "db", "--app-image", "mariadb:11", "--with",
                      "git-sync", catalogue=None)
    assert missing.get_json()["errors"]["f-s1-p-repo"] == "git-sync.repo: is required"
    assert "git-sync.repo: is required" in cli.stderr


def test_add_and_remove_sidecars_without_javascript(client: Any) -> None:
    added = post(client, "/compose", {**DATABASE_FORM, "action": "add",
                                      "add-pattern": "log-rotate"})
    assert added.status_code == 200
    text = added.get_data(as_text=True)
    assert 'name="s1-pattern" value="log-rotate"' in text
    removed = post(client, "/compose", {**DATABASE_FORM, "s1-pattern": "log-rotate",
                                        "action": "remove-1"})
    assert 'name="s1-pattern"' not in removed.get_data(as_text=True)
    linked = client.get("/compose?action=add&add-pattern=git-sync", headers=HOST)
    assert linked.status_code == 200 and 'value="git-sync"' in linked.get_data(as_text=True)


def test_inject_shows_what_pattern_inject_writes_and_the_diff(client: Any,
                                                             tmp_path: Path) -> None:
    answer = post(client, "/api/inject", INJECT_FORM).get_json()
    assert answer["ok"], answer
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(DEPLOYMENT, encoding="utf-8")
    words = shlex.split(answer["command"])
    assert words[:4] == ["pattern", "inject", "-f", "manifest.yaml"]
    injected = run_pattern(*words[1:], catalogue=None, cwd=tmp_path)
    assert injected.code == 0, injected.stderr
    assert answer["output"] == injected.stdout
    assert answer["diff"].startswith("--- manifest.yaml\n+++ injected.yaml\n@@ ")
    assert "\n+      initContainers:\n+        - name: ssh\n" in answer["diff"]
    upload = post(client, "/inject", {**{k: v for k, v in INJECT_FORM.items()
                                         if k != "manifest"},
                                      "upload": (__import__("io").BytesIO(DEPLOYMENT.encode()),
                                                 "shop.yaml")},
                  content_type="multipart/form-data")
    assert upload.status_code == 200
    assert pre(upload.get_data(as_text=True), "output") == injected.stdout


# ---------------------------------------------------------------- bad input: a 4xx, never a 500

def big_upload() -> dict[str, Any]:
    import io
    return {"s0-pattern": "ssh", "s0-p-authorizedKeysSecret": "k",
            "upload": (io.BytesIO(b"a: b\n" * (MANIFEST_LIMIT // 5 + 1)), "big.yaml")}


BAD: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("malformed manifest", "/inject", {**INJECT_FORM, "manifest": "kind: [Deployment\n"},
     422, "manifest.yaml: document 1 (line 2): not valid YAML"),
    ("not a manifest", "/inject", {**INJECT_FORM, "manifest": "- 1\n- 2\n"}, 422,
     "manifest.yaml"),
    ("no manifest", "/inject", {**INJECT_FORM, "manifest": ""}, 422, "paste a manifest"),
    ("no sidecar", "/inject", {"manifest": DEPLOYMENT}, 422, "name the sidecars"),
    ("unknown pattern (crafted)", "/compose", {**DATABASE_FORM, "s0-pattern": "no-such"}, 400,
     "unknown pattern &#39;no-such&#39;"),
    ("unknown pattern in inject (crafted)", "/inject", {**INJECT_FORM, "s0-pattern": "../etc"},
     400, "unknown pattern"),
    ("unknown pattern added (crafted)", "/compose", {"action": "add", "add-pattern": "nope"},
     400, "unknown pattern"),
    ("too many sidecars (crafted)", "/compose",
     {**DATABASE_FORM, **{f"s{i}-pattern": "ssh" for i in range(MAX_SIDECARS + 1)}}, 400,
     f"at most {MAX_SIDECARS} sidecars"),
    ("a value of the wrong type", "/compose", {**DATABASE_FORM, "s0-p-uid": "many"}, 422,
     "ssh.uid: &#39;many&#39; is not of type integer"),
    ("a name that is no DNS label", "/compose", {**DATABASE_FORM, "name": "Data Base"}, 422,
     "--name: &#39;Data Base&#39;"),
    ("an unbalanced command", "/compose", {**DATABASE_FORM, "app_command": "sh -c 'x"}, 422,
     "--app-command: No closing quotation"),
    ("bad env", "/compose", {**DATABASE_FORM, "app_env": "NOEQUALS"}, 422,
     "--app-env &#39;NOEQUALS&#39;: expected KEY=VALUE"),
    ("a kind we do not make (crafted)", "/compose", {**DATABASE_FORM, "kind": "Secret"}, 422,
     "--kind: &#39;Secret&#39; is not one of"),
    ("a Kubernetes version that is not X.Y", "/compose", {**DATABASE_FORM, "k8s_version": "1.x"},
     422, "--k8s-version: &#39;1.x&#39; must be X.Y"),
    ("a clash the pipeline finds", "/compose",
     {**DATABASE_FORM, "s1-pattern": "ssh"}, 422, "ssh"),
]


@pytest.mark.parametrize(("url", "data", "status", "message"),
                         [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_input_is_a_message_in_the_page_and_a_4xx(client: Any, url: str,
                                                      data: dict[str, Any], status: int,
                                                      message: str) -> None:
    page = post(client, url, data)
    text = page.get_data(as_text=True)
    assert page.status_code == status, text[-1500:]
    assert message in text
    api = post(client, "/api" + url, data)
    assert api.status_code == status
    assert api.is_json and not api.get_json()["ok"]


def test_a_huge_upload_is_refused_with_the_commands_limit(client: Any) -> None:
    for url in ("/inject", "/api/inject"):
        answer = post(client, url, big_upload(), content_type="multipart/form-data")
        assert answer.status_code == 413
        assert "larger than the 2 MiB" in answer.get_data(as_text=True)
    pasted = post(client, "/inject", {**INJECT_FORM, "manifest": "a: b\n" * (MANIFEST_LIMIT // 4)})
    assert pasted.status_code == 413
    assert "larger than the 2 MiB" in pasted.get_data(as_text=True)


def test_non_utf8_upload_and_unknown_pages(client: Any) -> None:
    import io
    answer = post(client, "/inject", {"s0-pattern": "ssh", "upload": (io.BytesIO(b"\xff\xfe"),
                                                                      "x.yaml")},
                  content_type="multipart/form-data")
    assert answer.status_code == 400 and "not UTF-8" in answer.get_data(as_text=True)
    for url, status in [("/patterns/no-such/", 404), ("/patterns/ssh/examples/../pattern.yaml",
                                                      404),
                        ("/patterns/ssh/examples/nope.svg", 404), ("/nowhere", 404)]:
        assert client.get(url, headers=HOST).status_code == status, url
    assert client.delete("/compose", headers=HOST).status_code == 405


def test_only_loopback_names_are_served(client: Any) -> None:
    refused = client.get("/", headers={"Host": "attacker.example:8421"})
    assert refused.status_code == 400
    assert "loopback address: open the URL pattern ui printed" in refused.get_data(as_text=True)
    for host in ("127.0.0.1:1", "localhost:1", "[::1]:1"):
        assert client.get("/", headers={"Host": host}).status_code == 200
    assert host_name("[::1]:80") == "::1" and host_name("localhost") == "localhost"


def test_pages_carry_a_strict_content_security_policy(client: Any) -> None:
    page = client.get("/", headers=HOST)
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_catalogue_and_pattern_pages(client: Any) -> None:
    text = client.get("/", headers=HOST).get_data(as_text=True)
    for name in ("ssh", "git-sync", "log-rotate"):
        assert f'id="pattern-{name}"' in text
    page = client.get("/patterns/ssh/", headers=HOST).get_data(as_text=True)
    assert "<h2>" in page and "examples/database.svg" in page
    assert "parameters:start" not in page  # the generated-section markers are not shown
    svg = client.get("/patterns/ssh/examples/database.svg", headers=HOST)
    assert svg.mimetype == "image/svg+xml" and svg.data.startswith(b"<!-- Generated by")


def test_every_link_of_every_pattern_page_leads_somewhere(client: Any) -> None:
    """A README's relative links work on its page: example files are served, any other file
    of the repository is linked at the project's sources (and exists here)."""
    checked = 0
    for name in Catalogue().names():
        page = client.get(f"/patterns/{name}/", headers=HOST).get_data(as_text=True)
        for href in re.findall(r'(?:href|src)="([^"]+)"', page):
            href = html.unescape(href)
            if href.startswith(views.SOURCE_URL):
                path = href.removeprefix(views.SOURCE_URL).partition("#")[0]
                assert (ROOT / path).exists(), (name, href)
            elif not href.startswith(("http://", "https://", "#", "mailto:")):
                url = href if href.startswith("/") else f"/patterns/{name}/{href}"
                assert client.get(url.partition("#")[0], headers=HOST).status_code == 200, \
                    (name, href)
            checked += 1
    assert checked > 50
    yaml_file = client.get("/patterns/ssh/examples/database.yaml", headers=HOST)
    assert yaml_file.mimetype == "text/plain" and b"kind:" in yaml_file.data


def test_the_cli_does_not_load_the_web_framework() -> None:
    code = "import sys, generator.cli; print('flask' in sys.modules, 'werkzeug' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False False"


def test_pattern_ui_prints_the_url_and_serves_loopback() -> None:
    import urllib.request

    from support import wait_for

    proc = subprocess.Popen([sys.executable, "-m", "generator", "ui", "--port", "0"],
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = wait_for("the URL line", proc.stderr.readline, 30)
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, line
        with urllib.request.urlopen(url.group(0), timeout=10) as response:
            assert response.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    refused = run_pattern("ui", "--host", "example.org", catalogue=None)
    assert refused.code == 2 and "give an IP address" in refused.stderr
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = run_pattern("ui", "--port", str(taken.getsockname()[1]), catalogue=None)
    assert busy.code == 1 and "cannot listen on 127.0.0.1:" in busy.stderr
    assert busy.stderr.count("\n") == 1, busy.stderr


def test_a_fresh_page_shows_no_messages(client: Any) -> None:
    for url in ("/compose", "/inject"):
        text = client.get(url, headers=HOST).get_data(as_text=True)
        assert 'class="error" id="err-f-name" role="status"></p>' in text or url == "/inject"
        assert "is required" not in text and "<li>" not in text


def test_the_readme_shows_the_composer_screenshot() -> None:
    from support import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/ui-composer.png)" in readme
    assert (ROOT / "docs" / "ui-composer.png").read_bytes().startswith(b"\x89PNG\r\n")
    assert "PATTERN_UI_SCREENSHOT=docs/ui-composer.png" in readme  # how to refresh it


KEYS = ["name", "namespace", "kind", "replicas", "schedule", "k8s_version", "sidecar_mode",
        "app_image", "app_command", "app_ports", "app_env", "manifest", "action", "add-pattern",
        "s0-pattern", "s0-name", "s0-p-port", "s0-p-uid", "s0-p-user", "s0-v-data",
        "s1-pattern", "s1-p-repo", "s9999-pattern"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(form=st.dictionaries(st.sampled_from(KEYS), st.one_of(
    st.sampled_from(["ssh", "git-sync", "log-rotate", "add", "remove-0", "", "Pod", "1.33",
                     "kind: [", "80", "-1", "'", "$(rm -rf /)", "a=b", "\x00"]),
    st.text(max_size=40)), max_size=12),
    url=st.sampled_from(["/compose", "/api/compose", "/inject", "/api/inject"]))
def test_no_form_is_a_500(client: Any, form: dict[str, str], url: str) -> None:
    answer = post(client, url, {**DATABASE_FORM, **form} if url.endswith("compose") else form)
    assert answer.status_code < 500, answer.get_data(as_text=True)[-800:]
