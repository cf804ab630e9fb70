"""`pattern ui` in a real browser: compose the MariaDB + ssh pod through the form and get what
`pattern generate` writes, byte for byte; the schema's message beside a bad field; inject
into a pasted Deployment and see the diff; the catalogue. A screenshot of each view is kept
in the run's artifacts folder; PATTERN_UI_SCREENSHOT=PATH also writes the composer's there
(the README's: see "Refreshing the screenshot" in README.md)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from support import run_pattern
from ui_inputs import DATABASE_APP, DATABASE_CLAIM, DATABASE_SSH, DEPLOYMENT


def add_sidecar(page: Any, pattern: str) -> None:
    """The add button posts the form (so it works without the script too)."""
    page.select_option("#add-pattern", pattern)
    with page.expect_navigation():
        page.click("#add")


def live(page: Any) -> None:
    page.wait_for_selector("form[data-ready=true]", state="attached")


def compose_database(page: Any, url: str) -> None:
    page.goto(f"{url}/compose")
    live(page)
    for name, value in DATABASE_APP.items():
        page.fill(f"#f-{name}", value)
    add_sidecar(page, "ssh")
    live(page)
    for key, value in DATABASE_SSH.items():
        page.fill(f"#f-s0-p-{key}", value)
    page.fill("#f-s0-v-data", DATABASE_CLAIM)  # the last field: wait for the preview of it
    page.wait_for_function("""claim => document.getElementById('stack').textContent.includes(
        'claimName: ' + claim) && document.getElementById('output').textContent !== ''""",
                           arg=DATABASE_CLAIM)


def test_compose_the_database_pod_and_get_what_pattern_generate_writes(
        page: Any, ui_url: str, artifacts: Path, tmp_path: Path) -> None:
    compose_database(page, ui_url)
    preview = page.text_content("#output")
    stack = tmp_path / "database.stack.yaml"
    stack.write_text(page.text_content("#stack"), encoding="utf-8")
    generated = run_pattern("generate", "-f", str(stack), catalogue=None)
    assert generated.code == 0, generated.stderr
    assert preview == generated.stdout
    assert page.text_content("#command") == "pattern generate -f database.stack.yaml " \
        "--output-file database.yaml"
    page.wait_for_function("() => document.getElementById('diagram').naturalWidth > 0")
    with page.expect_download() as download:
        page.click("button[data-download=output]")
    assert Path(download.value.path()).read_text(encoding="utf-8") == generated.stdout
    assert download.value.suggested_filename == "database.yaml"
    shot = artifacts / "composer.png"
    page.locator("#sidecar-0 legend").scroll_into_view_if_needed()
    page.screenshot(path=str(shot), full_page=False)
    wanted = os.environ.get("PATTERN_UI_SCREENSHOT")
    if wanted:
        shutil.copyfile(shot, wanted)
    page.click("button[data-copy=output]")
    assert page.evaluate("navigator.clipboard.readText()") == generated.stdout


def test_an_invalid_value_shows_the_schemas_message_beside_the_field(
        page: Any, ui_url: str, artifacts: Path) -> None:
    compose_database(page, ui_url)
    page.fill("#f-s0-p-port", "80")
    page.wait_for_function("() => document.getElementById('err-f-s0-p-port').textContent !== ''")
    assert page.text_content("#err-f-s0-p-port") == \
        "ssh.port: 80 is less than the minimum of 1024"
    assert "invalid" in (page.get_attribute("#f-s0-p-port >> xpath=..", "class") or "")
    page.locator("#sidecar-0").screenshot(path=str(artifacts / "composer-invalid-field.png"))
    assert page.text_content("#output") == ""  # no stale YAML beside a bad form
    assert page.is_hidden("#diagram")
    page.fill("#f-s0-p-port", "2222")
    page.wait_for_function("() => document.getElementById('err-f-s0-p-port').textContent === ''")
    page.wait_for_selector("#diagram", state="visible")


def test_without_javascript_the_form_posts_and_shows_the_message(
        page_without_js: Any, ui_url: str, artifacts: Path) -> None:
    page = page_without_js
    page.goto(f"{ui_url}/compose?action=add&add-pattern=ssh")
    for name, value in DATABASE_APP.items():
        page.fill(f"#f-{name}", value)
    page.fill("#f-s0-p-uid", "zero")
    with page.expect_navigation():
        page.click("#preview-button")
    assert page.text_content("#err-f-s0-p-uid") == "ssh.uid: 'zero' is not of type integer"
    page.fill("#f-s0-p-uid", "999")
    with page.expect_navigation():
        page.click("#preview-button")
    assert "kind: Pod" in (page.text_content("#output") or "")
    page.screenshot(path=str(artifacts / "composer-without-javascript.png"))


def test_inject_into_a_pasted_deployment_shows_the_diff(page: Any, ui_url: str,
                                                         artifacts: Path,
                                                         tmp_path: Path) -> None:
    page.goto(f"{ui_url}/inject")
    live(page)
    page.fill("#f-manifest", DEPLOYMENT)
    add_sidecar(page, "ssh")
    assert page.input_value("#f-manifest") == DEPLOYMENT  # the post kept what was pasted
    live(page)
    page.fill("#f-s0-p-authorizedKeysSecret", "shop-keys")
    page.wait_for_function("() => document.getElementById('diff').textContent.includes("
                           "'+      initContainers:')")
    added = page.locator("#diff span.add")
    assert added.count() > 10
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(DEPLOYMENT, encoding="utf-8")
    injected = run_pattern("inject", "-f", str(manifest), "--with", "ssh", "--set",
                           "ssh.authorizedKeysSecret=shop-keys", catalogue=None)
    assert page.text_content("#output") == injected.stdout
    assert page.text_content("#command") == \
        "pattern inject -f manifest.yaml --with ssh --set ssh.authorizedKeysSecret=shop-keys"
    page.screenshot(path=str(artifacts / "inject.png"), full_page=True)


def test_the_catalogue_and_a_patterns_page(page: Any, ui_url: str, artifacts: Path) -> None:
    page.goto(ui_url)
    assert page.locator("table.catalogue tbody tr").count() >= 10
    page.screenshot(path=str(artifacts / "catalogue.png"), full_page=True)
    with page.expect_navigation():
        page.click("#pattern-ssh a >> text=ssh")
    assert page.text_content("h1").startswith("ssh")
    page.wait_for_function("() => [...document.querySelectorAll('figure.diagram img')]"
                           ".every(img => img.complete && img.naturalWidth > 0)")
    page.screenshot(path=str(artifacts / "pattern-ssh.png"))


def test_a_crafted_request_gets_a_clear_page(page: Any, ui_url: str) -> None:
    answer = page.goto(f"{ui_url}/compose?action=add&add-pattern=no-such")
    assert answer.status == 400
    assert "unknown pattern 'no-such'" in page.text_content("#message")
