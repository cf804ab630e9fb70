"""Every test under tests/integration is marked `integration` (run by the test command)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

_INTEGRATION = Path(__file__).parent / "integration"

# Property tests run beside the whole suite on 2 cores: a 200 ms deadline per example (the
# default) or the too-slow health check fails a test for the machine's load, not its claim.
settings.register_profile("loaded", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("loaded")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _INTEGRATION in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many bad inputs the run tried (each checked by tests/bad_input.py)."""
    import sys

    module = sys.modules.get("bad_input")
    if module is not None and module.TRIED:
        verdict = "see the failures above" if terminalreporter.stats.get("failed") else \
            "none printed a traceback, took 10 s or more, or changed a file it was not asked to " \
            "write"
        terminalreporter.write_line(f"bad-input cases tried: {len(module.TRIED)} ({verdict})")
