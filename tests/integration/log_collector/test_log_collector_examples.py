"""The pattern's copy-paste examples run as written, pointed at the test's central servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lc_support as lc
import yaml
from pods import running, stack_documents

EXAMPLES = lc.CATALOGUE / "log-collector" / "examples"


def _example(file: str, name: str) -> dict[str, Any]:
    stack: dict[str, Any] = yaml.safe_load((EXAMPLES / file).read_text())
    stack["metadata"]["name"] = name
    return stack


def test_three_files_to_syslog_example(peers: lc.Peers) -> None:
    name = lc.unique("lc-ex-syslog")
    docs = stack_documents(_example("three-files-to-syslog.stack.yaml", name), lc.CATALOGUE,
                           (f"log-collector.host={peers.address('rsyslog')}",
                            f"log-collector.port={lc.SYSLOG_PORT}"))
    with running(docs) as (pod,):
        records = lc.wait_for(lambda: lc.read_syslog(peers.out, pod.name), 9, 90)
    by_level = {r.fields["level"]: r for r in records}
    assert set(by_level) == {"error", "warning", "info"}, records
    assert by_level["error"].level == "err" and "failed" in by_level["error"].message
    assert by_level["info"].fields["file"] == "info.log"
    assert by_level["info"].fields["container"] == name


def test_http_json_example_with_line_levels_and_stack_traces(peers: lc.Peers,
                                                             tmp_path: Path) -> None:
    name = lc.unique("lc-ex-http")
    stack = _example("http-json.stack.yaml", name)
    claim = f"{name}-state"
    stack["spec"]["sidecars"][0]["volumes"]["state"]["persistentVolumeClaim"]["claimName"] = claim
    docs = [lc.secret("shop-log-token", {"http-headers": "Authorization: Bearer t0ken\n"}),
            *stack_documents(stack, lc.CATALOGUE,
                             (f"log-collector.url={peers.http_url()}/ingest/{name}",))]
    try:
        with running(docs) as (pod,):
            records = lc.wait_for(lambda: lc.read_http(peers.out, pod.name), 4, 90)
    finally:
        lc.podman("volume", "rm", "-f", claim, check=False)
    levels = {r.level for r in records}
    assert {"INFO", "ERROR"} <= levels, records
    error = next(r for r in records if r.level == "ERROR")
    # The stack trace lines are joined to the record that starts with a date.
    assert error.message.endswith("ERROR checkout failed\n  at Cart.pay\n  at Shop.main"), error
    assert error.fields["env"] == "prod" and error.fields["file"] == "app.log"
    assert error.fields["auth"] == "Bearer t0ken"
