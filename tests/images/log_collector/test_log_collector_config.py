"""The syslog-ng configuration the log-collector pattern renders: what it says for each choice,
and that no user value, however hostile, changes its structure (values are quoted literals or
environment variables); syslog-ng itself parses every rendering."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import CATALOGUE

from generator import images
from generator.catalogue import Catalogue
from generator.compose import compose
from generator.errors import PatternError
from generator.sidecars import SidecarRequest
from generator.stack import Stack

HOSTILE = [
    'x"); }; destination d_pwn { file("/tmp/pwn"); }; log { source(s_1); #',
    "x'); }; destination d_pwn { file('/tmp/pwn'); }; #",
    "line1\nline2\r\t};",
    "`HOME` and a trailing backslash \\",
    "$HOST ${MSG} $(env HOME) @include \"/etc/passwd\"",
]
# What each string parameter needs around it to be otherwise valid, so hostile text that the
# schema lets through is tried too, not only rejected.
PREFIXES = {
    "logDir": "/var/log/", "levelRegex": "(?<level>x)", "multilineStart": "^", "host": "a",
    "url": "http://h/", "bufferSize": "1", "sdId": "a@1",
    "containerName": "a", "glob": "a", "fieldName": "a", "fieldValue": "",
}
BASE: dict[str, Any] = {
    "destination": "http", "url": "http://sink/ingest", "levelFrom": "line",
    "multilineStart": "^20", "headersSecret": "hdrs", "fields": {"team": "payments"},
    "files": [{"glob": "app.log", "level": "error"}, {"glob": "*.txt"}],
}


def render(values: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The rendered syslog-ng.conf and the sidecar's literal environment."""
    stack = Stack(name="demo", app={"image": "localhost/busybox:latest"},
                  sidecars=(SidecarRequest("log-collector", "log-collector", values=values),))
    docs = compose(stack, Catalogue(CATALOGUE), [])
    conf = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["syslog-ng.conf"]
    sidecar = docs[-1]["spec"]["initContainers"][0]
    return conf, {e["name"]: e["value"] for e in sidecar["env"] if "value" in e}


_LITERAL = re.compile(r"'[^']*'|\"(?:[^\"\\]|\\.)*\"|#[^\n]*|\d+")


def skeleton(conf: str) -> str:
    """The config with every string literal, comment and number masked: its structure."""
    return _LITERAL.sub(lambda m: {"'": "S", '"': "S", "#": "#"}.get(m.group()[0], "N"), conf)


def backticks(conf: str) -> list[str]:
    return re.findall(r"`[^`]*`", conf)


def test_default_render_ships_three_files_with_their_levels_under_flow_control() -> None:
    conf, env = render({})
    for name, level, severity in (("error", "error", "err"), ("warning", "warning", "warning"),
                                  ("info", "info", "info")):
        assert f"filename-pattern('{name}.log')" in conf
        assert f"default-priority({severity})" in conf
        assert f'set("{level}" value(".SDATA.logcollector@32473.level"));' in conf
    assert conf.count("flags(flow-control);") == 3 and "disk-buffer(" not in conf
    assert "syslog('syslog'" in conf and "port(601)" in conf and 'transport("tcp")' in conf
    assert env == {"LOG_COLLECTOR_CONTAINER": "demo", "LOG_COLLECTOR_APP": "demo",
                   "LOG_COLLECTOR_FLUSH_TIMEOUT": "20",
                   "LOG_COLLECTOR_GLOBS": "error.log warning.log info.log",
                   "LOG_COLLECTOR_MAX_FILES": "100", "LOG_COLLECTOR_STALL_AFTER": "300"}


@pytest.mark.parametrize("glob", ["app.log*", "*", "error*"])
def test_a_glob_that_would_match_rotated_copies_is_refused(glob: str) -> None:
    with pytest.raises(PatternError, match="ends in \\*, so it also matches rotated copies"):
        render({"files": [{"glob": glob}]})


def test_drop_uses_a_reliable_disk_buffer_of_buffer_size_and_no_flow_control() -> None:
    conf, _ = render({"whenFull": "drop", "bufferSize": "2Gi"})
    assert "flow-control" not in conf
    assert "reliable(yes)" in conf and f"disk-buf-size({2 << 30})" in conf
    assert "disk-buffer(" not in render({"whenFull": "drop", "bufferSize": "0"})[0]


def test_tls_and_line_levels_render_their_options() -> None:
    conf, _ = render({"tls": True, "tlsCaSecret": "ca", "levelRegex": "^(?<level>[A-Z]+) "})
    assert 'transport("tls")' in conf and "port(6514)" in conf
    assert 'ca-file("/etc/log-collector-tls/ca.crt")' in conf
    assert "regexp-parser(" in conf and "(?<level>" in conf


@pytest.mark.parametrize(("values", "message"), [
    ({"destination": "syslog", "url": "http://x/"}, "url is for destinations http"),
    ({"destination": "elasticsearch", "url": "http://es/x"}, "the _bulk url"),
    ({"destination": "http"}, "needs url"),
    ({"destination": "http", "url": "http://x/", "tls": True}, "tls is for destination syslog"),
    ({"fields": {"a b": "x"}}, "must be letters, digits and _"),
    ({"fields": {"pod": "x"}}, "built-in field"),
])
def test_values_that_would_be_ignored_or_break_the_config_are_refused(
        values: dict[str, Any], message: str) -> None:
    with pytest.raises(PatternError, match=re.escape(message)):
        render(values)


def _with(key: str, text: str) -> dict[str, Any]:
    values = {k: v for k, v in BASE.items()}
    if key == "glob":
        values["files"] = [{"glob": text}]
    elif key == "fieldName":
        values["fields"] = {text: "x"}
    elif key == "fieldValue":
        values["fields"] = {"team": text}
    elif key == "host":
        values = {"host": text}
    else:
        values[key] = text
    return values


def _baseline(key: str, text: str) -> dict[str, Any]:
    """Valid values of the same kind: a glob with a wildcard, a URL of the same scheme."""
    same = {"glob": "a*" if "*" in text or "?" in text else "a",
            "url": "https://h/" if text.startswith("https://") else "http://h/"}
    valid = {"bufferSize": "1", "sdId": "a@1"}.get(key, PREFIXES[key] + "z")
    return _with(key, same.get(key, valid))


@pytest.mark.parametrize("key", sorted(PREFIXES))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_text_is_refused_or_stays_one_literal(key: str, data: st.DataObject) -> None:
    tails = st.one_of(st.text(), st.sampled_from(HOSTILE))
    text = data.draw(st.one_of(tails, st.builds(lambda tail: PREFIXES[key] + tail, tails)))
    try:
        conf, env = render(_with(key, text))
    except PatternError:
        return
    base_conf, _ = render(_baseline(key, text))
    assert skeleton(conf) == skeleton(base_conf)
    assert backticks(conf) == backticks(base_conf)  # no new `ENV` reference
    if key == "fieldValue":
        assert env["LOG_COLLECTOR_FIELD_team"] == text  # verbatim, and only there
        assert text not in conf or text in base_conf


@pytest.mark.integration
def test_syslog_ng_parses_every_rendering(tmp_path: Path) -> None:
    """syslog-ng 3.38 checks each destination and mode, with hostile values that the schema
    accepts in every string it allows them in."""
    (image,) = images.build(["log-collector"], registry=None, tag=None, push=False, quiet=True,
                            say=print)
    regex = r'(?<level>[a-z"$]+)"\); \}; destination d_pwn \{ file\("/tmp/pwn"\); \}; #'
    cases: dict[str, dict[str, Any]] = {
        "default": {}, "drop": {"whenFull": "drop"}, "tls": {"tls": True, "tlsVerify": False},
        "http": {**BASE, "url": "https://h/x?a=$b;c=}{"},
        "es": {**BASE, "destination": "elasticsearch", "url": "http://es:9200/app-logs/_bulk",
               "whenFull": "drop"},
        "hostile": {**BASE, "levelRegex": regex, "multilineStart": regex,
                    "fields": {"note": HOSTILE[0] + HOSTILE[2] + HOSTILE[3]},
                    "url": "http://h/);};destination{d}#$(env)${MSG}"},
    }
    for name, values in cases.items():
        conf, _ = render(values)
        (tmp_path / f"{name}.conf").write_text(conf)
    tmp_path.chmod(0o755)
    for path in tmp_path.iterdir():
        path.chmod(0o644)
    script = ('rc=0; for f in /c/*.conf; do out=$(syslog-ng --syntax-only --no-caps -f "$f" 2>&1)'
              ' || { echo "FAIL $f: $out"; rc=1; }; done; exit $rc')
    result = subprocess.run(
        ["podman", "run", "--rm", "--user", "23456", "--read-only", "-v", f"{tmp_path}:/c:ro",
         "-e", "LOG_COLLECTOR_POD=p", "--entrypoint", "sh", image, "-c", script],
        capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
