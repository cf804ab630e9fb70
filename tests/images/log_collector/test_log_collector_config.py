"""The syslog-ng configuration the log-collector pattern renders: what it says for each choice,
and that no user value, however hostile, changes its structure (values are quoted literals or
environment variables); syslog-ng itself parses every rendering."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lc_support import BASE, HOSTILE, render

from generator.errors import PatternError
from generator.runner.plan import expand_references

# What each string parameter needs around it to be otherwise valid, so hostile text that the
# schema lets through is tried too, not only rejected.
PREFIXES = {
    "logDir": "/var/log/", "levelRegex": "(?<level>x)", "multilineStart": "^", "host": "a",
    "url": "http://h/", "bufferSize": "1", "sdId": "a@1",
    "containerName": "a", "glob": "a", "fieldName": "a", "fieldValue": "",
}
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
        # verbatim (as the container sees it, after the kubelet's $(VAR) expansion), only there
        assert expand_references(env["LOG_COLLECTOR_FIELD_team"], {}) == text
        assert text not in conf or text in base_conf
