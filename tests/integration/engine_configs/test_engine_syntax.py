"""Rule 2 of issue 17, end to end: every engine config the generator renders, from every example
and from hostile values the parameter schema lets through, passes the engine's own check in the
sidecar image it runs in (syslog-ng: `--syntax-only`, which compiles every regexp, then a
start-up), so a value is refused at generate time or it works.

sshd and ProFTPD configs are written by their images at start-up: test_daemon_configs.py runs
those. git-sync and iaas-metadata have no config file (flags and environment only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pods import cli
from support import CATALOGUE

from generator import schema
from generator.catalogue import Catalogue
from generator.errors import PatternError
from generator.generate import GenerateRequest, generate_manifest
from generator.sidecars import SidecarFlags

HERE = Path(__file__).parent
PATTERN = Catalogue(CATALOGUE).get("log-collector")
IMAGE = PATTERN.images["main"]
EXAMPLES = sorted((CATALOGUE / "log-collector" / "examples").glob("*.stack.yaml"))
HOST = "log-collector.host=logs.example.org"

# Text a user might type in each free-text parameter: quotes, backslashes, syslog-ng's own
# syntax, unicode, the longest value allowed. Whatever the schema lets through must work.
HOSTILE_TEXT = ["a'b", 'a"b', "a\\b", "a\\", "x); destination(d); #", "@include '/etc/passwd'",
                "`id`", "$(id)", "${HOST}", "é ü ✓", "}", "{", "#", ";", "x" * 512]
HOSTILE: list[tuple[str, ...]] = [
    *((f"log-collector.multilineStart={t}",) for t in [
        *HOSTILE_TEXT, "^\\d{4}-\\d{2}-\\d{2}", "(?<start>[A-Z])", "[[:alpha:]]+", "a{2,}",
        "(?i)^error", "\\\\"]),
    *(("log-collector.levelFrom=line", f"log-collector.levelRegex={t}") for t in [
        "(?<level>[A-Z]+)", "^\\S+ (?<level>\\w+) ", "(?<level>a|b)\"", "(?<level>x)\\\\",
        "(?<level>x) ${HOST}", "(?<level>x)" + "y" * 500]),
    *((f"log-collector.logDir={t}",) for t in ["/var/log/a b", "/var/log/é", "/v'ar", '/v"ar',
                                                "/var/log/" + "x" * 200]),
    *((f"log-collector.host={t}",) for t in ["::1", "10.0.0.1", "a-b.example.org"]),
    *((f"log-collector.bufferSize={t}",) for t in ["1", "999999Gi", "1Ki"]),
    ('log-collector.files=[{"glob": "*.log"}, {"glob": "a+b@c.log", "level": "debug"}]',),
]


def _configs(documents: list[dict[str, Any]]) -> list[str]:
    return [text for doc in documents if doc.get("kind") == "ConfigMap"
            for key, text in doc.get("data", {}).items() if key.endswith(".conf")]


def _render(file: str | None, sets: tuple[str, ...]) -> list[str] | None:
    """The syslog-ng configs generate writes, or None when it refuses the values."""
    request = GenerateRequest(
        file=file, name=None if file else "shop", app_image=None if file else "nginx:1.27",
        sidecars=SidecarFlags(with_=() if file else ("log-collector",),
                              set_=(*(() if file else (HOST,)), *sets)),
        catalogue=CATALOGUE)
    try:
        text, _ = generate_manifest(request)
    except PatternError:
        return None
    return _configs(list(yaml.safe_load_all(text)))


def _check(configs: dict[str, str], folder: Path) -> dict[str, str]:
    """Each config's verdict from syslog-ng in the log-collector image: 'ok' or why not."""
    folder.mkdir()
    for name, text in configs.items():
        (folder / name).write_text(text)
    (folder / "check.sh").write_text((HERE / "syslog_ng_check.sh").read_text())
    # The image stages only what syslog-ng runs: the check's own tools (mktemp, mkfifo, tee...)
    # come from the host's static busybox (busybox-static, installed by setup-runtime).
    # podman's --timeout ends the container too, should the check hang (the client's does not).
    result = cli("run", "--rm", "--timeout", "540", "--user", "0", "--entrypoint", "sh",
                 "-v", f"{folder}:/cfg:ro",
                 "-v", "/bin/busybox:/opt/busybox:ro", IMAGE, "/cfg/check.sh",
                 *(f"/cfg/{n}" for n in configs), timeout=600)
    verdicts = {}
    for line in result.stdout.splitlines():
        name, _, verdict = line.partition(" ")
        verdicts[name] = verdict
    assert set(verdicts) == set(configs), result
    return verdicts


def test_every_rendered_syslog_ng_config_passes_syslog_ngs_own_check(tmp_path: Path) -> None:
    configs: dict[str, str] = {}
    refused: list[tuple[str, ...]] = []
    for example in EXAMPLES:
        rendered = _render(str(example), ())
        assert rendered, f"{example.name} does not generate"
        configs.update({f"{example.stem}-{i}.conf": c for i, c in enumerate(rendered)})
    for index, sets in enumerate(HOSTILE):
        rendered = _render(None, sets)
        if rendered is None:
            refused.append(sets)
            continue
        configs.update({f"hostile{index}-{i}.conf": c for i, c in enumerate(rendered)})
    # The check can fail: a regexp the schema would refuse, put in by hand, is caught.
    base = next(c for name, c in configs.items() if "multi-line-prefix('" in c)
    configs["control-bad-regexp.conf"] = base.replace("multi-line-prefix('",
                                                      "multi-line-prefix('(", 1)
    assert schema.compile_error("(" + "x", dialect="pcre") is not None
    verdicts = _check(configs, tmp_path / "configs")
    assert verdicts.pop("control-bad-regexp.conf").startswith("FAIL: syntax"), verdicts
    failed = {name: v for name, v in verdicts.items() if v != "ok"}
    assert failed == {}
    # Most hostile values are accepted and work; those refused are refused at generate time.
    assert len(configs) - 1 >= len(EXAMPLES) + len(HOSTILE) // 2, refused


@pytest.mark.parametrize("regex", ["(", "(?<level>x", "[z-a]", "a{2,1}", "(?<level>x)(?<level>y)"])
def test_a_regexp_syslog_ng_would_refuse_is_refused_at_generate_time(regex: str) -> None:
    assert _render(None, ("log-collector.levelFrom=line",
                          f"log-collector.levelRegex={regex}")) is None
    assert _render(None, (f"log-collector.multilineStart={regex}",)) is None
