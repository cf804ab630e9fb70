"""Parameter checks: every problem named with its path, in words a user understands."""

from __future__ import annotations

import pytest

from generator import schema

PERIOD = {"type": "string", "format": "duration", "x-min-duration": "1s"}


def test_duration_format_and_floor() -> None:
    assert schema.validate("1m30s", PERIOD, "git-sync.period") == []
    assert schema.validate("5 minutes", PERIOD, "git-sync.period") == [
        "git-sync.period: '5 minutes' is not a duration (e.g. 10s, 1m30s, 500ms)"]
    assert schema.validate("500ms", PERIOD, "p") == ["p: 500ms is below the floor of 1s"]


def test_all_problems_are_reported_with_paths() -> None:
    spec = {"type": "object", "additionalProperties": False, "required": ["repo"],
            "properties": {"repo": {"type": "string"}, "depth": {"type": "integer", "minimum": 0}}}
    problems = schema.validate({"depht": 1, "depth": -1}, spec, "git-sync")
    assert problems == [
        "git-sync.repo: is required",
        "git-sync.depht: unknown key (did you mean depth?)",
        "git-sync.depth: -1 is less than the minimum of 0",
    ]


@pytest.mark.parametrize(("fmt", "good", "bad"), [
    ("absolute-path", "/var/log/app", "var/log"),
    ("git-url", "git@example.org:shop.git", "not a url"),
    ("git-url", "https://example.org/shop.git", "ftp://example.org/x"),
    ("dns-label", "my-secret", "My_Secret"),
    ("quantity", "64Mi", "64 MB"),
])
def test_formats(fmt: str, good: str, bad: str) -> None:
    assert schema.validate(good, {"type": "string", "format": fmt}, "x") == []
    assert len(schema.validate(bad, {"type": "string", "format": fmt}, "x")) == 1


def test_booleans_are_not_integers() -> None:
    assert schema.validate(True, {"type": "integer"}, "x") == ["x: True is not of type integer"]


def test_duration_seconds() -> None:
    assert schema.duration_seconds("1h2m3.5s") == 3723.5
