"""`pattern ui` in Debian's chromium, driven by Playwright: one server and one browser for the
session. The browser is never downloaded (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1, and the system
one is launched by path); a missing chromium fails these tests, it never skips them."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def ui_url() -> Iterator[str]:
    """`pattern ui`'s application on a free loopback port, served as the command serves it."""
    from werkzeug.serving import make_server

    from generator.web.app import create_app

    server = make_server("127.0.0.1", 0, create_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="pattern-ui", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Screenshots of each view, kept with the run's temporary files."""
    folder = tmp_path_factory.getbasetemp() / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _launch(playwright: Any, profile: Path, *, javascript: bool = True) -> Any:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install it with `SETUP_STEPS=packages bash "
                    "scripts/setup-runtime.sh` (Debian's chromium; it is never downloaded)")
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
        java_script_enabled=javascript, viewport={"width": 1400, "height": 1000},
        permissions=["clipboard-read", "clipboard-write"], accept_downloads=True)


@pytest.fixture(scope="session")
def playwright_session() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One chromium (a fresh profile) for the session; each test opens its own page."""
    context = _launch(playwright_session, tmp_path_factory.mktemp("chromium-profile"))
    context.set_default_timeout(60_000)  # a loaded machine, not the claim
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    # A 422 answer to a live preview is logged as a failed load: that one is expected.
    tab.on("console", lambda message: errors.append(message.text)
           if message.type == "error" and "status of 4" not in message.text else None)
    try:
        yield tab
    finally:
        tab.close()
    assert not errors, f"the page's script failed: {errors}"


@pytest.fixture
def page_without_js(playwright_session: Any, tmp_path: Path) -> Iterator[Any]:
    context = _launch(playwright_session, tmp_path / "profile", javascript=False)
    context.set_default_timeout(60_000)  # a loaded machine, not the claim
    try:
        yield context.new_page()
    finally:
        context.close()
