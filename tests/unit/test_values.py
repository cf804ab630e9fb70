"""Values: defaults, then the stack file, then --set; typed by the schema; all errors at once."""

from __future__ import annotations

import pytest
from support import FIXTURE_CATALOGUE

from generator.catalogue import Catalogue, Pattern
from generator.errors import InvalidValues, UsageError
from generator.values import parse_assignment, resolve


@pytest.fixture
def seed() -> Pattern:
    return Catalogue(FIXTURE_CATALOGUE).get("seed-loader")


@pytest.fixture
def server() -> Pattern:
    return Catalogue(FIXTURE_CATALOGUE).get("file-server")


def test_defaults_then_file_then_set(server: Pattern) -> None:
    values = resolve(server, "fs", {"port": 9000, "banner": "file"},
                     [parse_assignment("fs.banner=cli")])
    assert values["port"] == 9000 and values["banner"] == "cli" and values["dir"] == "/srv/share"


def test_set_is_typed_by_the_schema(server: Pattern) -> None:
    values = resolve(server, "fs", {}, [parse_assignment("fs.port=8082"),
                                        parse_assignment("fs.banner=8082"),
                                        parse_assignment("fs.extraArgs=-v,-x")])
    assert values["port"] == 8082 and values["banner"] == "8082"
    assert values["extraArgs"] == ["-v", "-x"]


def test_every_problem_at_once(seed: Pattern) -> None:
    with pytest.raises(InvalidValues) as caught:
        resolve(seed, "seed-loader", {}, [parse_assignment("seed-loader.period=5 minutes"),
                                          parse_assignment("seed-loader.peroid=1s")])
    assert caught.value.problems == [
        "seed-loader.peroid: unknown parameter of seed-loader (did you mean period?)",
        "seed-loader.seed: is required",
        "seed-loader.period: '5 minutes' is not a duration (e.g. 10s, 1m30s, 500ms)",
    ]


@pytest.mark.parametrize("text", ["noequals", "=x", "nodot=1", "a..b=1"])
def test_malformed_set_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        parse_assignment(text)


def test_value_may_contain_equals() -> None:
    assert parse_assignment("a.b=c=d").text == "c=d"
