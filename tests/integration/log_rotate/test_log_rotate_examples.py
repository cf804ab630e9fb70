"""The pattern's copy-paste example runs as written (the README's commands), pointed at the
log-collector tests' central rsyslog, with rotations every few seconds."""

from __future__ import annotations

import re
from typing import Any

import lc_support as lc
import lr_support as lr
import yaml
from pods import running, stack_documents
from support import wait_for

EXAMPLES = lc.CATALOGUE / "log-rotate" / "examples"
# The README's --set flags; the receiver by its address (lr.receiver_address says why).
FAST = ("log-rotate.maxSize=200", "log-rotate.checkInterval=5s",
        f"log-collector.port={lc.SYSLOG_PORT}")


def _example(file: str, name: str) -> dict[str, Any]:
    stack: dict[str, Any] = yaml.safe_load((EXAMPLES / file).read_text())
    stack["metadata"]["name"] = name
    return stack


def test_three_files_rotated_and_shipped_example(lr_image: str, lc_image: str,
                                                 peers: lc.Peers) -> None:
    name = lc.unique("lr-ex")
    docs = stack_documents(_example("three-files-rotated-and-shipped.stack.yaml", name),
                           lc.CATALOGUE,
                           (*FAST, f"log-collector.host={lr.receiver_address(peers)}"))
    with running(docs) as (pod,):
        status = wait_for("two rotations a file", lambda: (
            s := lr.status(pod))["rotations"] >= 6 and s, 90)
        files = lr.volume_lines(pod)
        app_said = pod.logs(name)
        records = lc.read_syslog(peers.out, pod.name)
    assert status["failures"] == 0, status
    assert "reopening logs" in app_said  # the SIGHUP reached the app, which lived on
    assert any(n.startswith("error.log-") and n.endswith(".gz") for n in files), sorted(files)
    for level in ("error", "warning", "info"):
        numbers = [int(m.group(1)) for r in records if r.fields.get("level") == level
                   for m in [re.match(r"order (\d+) ", r.message)] if m]
        assert numbers and numbers == list(range(1, len(numbers) + 1)), (level, numbers)
        on_disk = [int(line.split()[1]) for line in lr.in_rotation_order(files, f"{level}.log")]
        assert on_disk == list(range(1, len(on_disk) + 1)), (level, on_disk)
