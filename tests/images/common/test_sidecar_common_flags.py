"""images/_common/sidecar_common.py's flags with environment twins: a twin is converted and
checked exactly as its flag is, and a bad value either way is one usage error (exit 2)."""

from __future__ import annotations

import argparse

import pytest
from sidecar_common import add_flag, add_switch, on_off


def parser(env: dict[str, str]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="demo")
    add_flag(p, "DEMO_", "--count", "2", "how many", type=int, environ=env)
    add_flag(p, "DEMO_", "--mode", "fast", "how", choices=("fast", "slow"), environ=env)
    add_flag(p, "DEMO_", "--level", "1", "which", type=int, choices=(1, 2), environ=env)
    add_flag(p, "DEMO_", "--name", None, "plain text", environ=env)
    add_switch(p, "DEMO_", "--loud", "say more", environ=env)
    return p


def test_defaults_twins_and_flags_in_that_order() -> None:
    assert vars(parser({}).parse_args([])) == {"count": 2, "mode": "fast", "level": 1,
                                               "name": None, "loud": False}
    env = {"DEMO_COUNT": "5", "DEMO_MODE": "slow", "DEMO_LEVEL": "2", "DEMO_NAME": "x",
           "DEMO_LOUD": "true"}
    assert vars(parser(env).parse_args([])) == {"count": 5, "mode": "slow", "level": 2,
                                                "name": "x", "loud": True}
    given = parser(env).parse_args(["--count", "7", "--mode", "fast", "--name", "y"])
    assert (given.count, given.mode, given.name) == (7, "fast", "y")  # the flag wins
    assert parser({"DEMO_LOUD": "false"}).parse_args(["--loud"]).loud is True


@pytest.mark.parametrize("argv,env,said", [
    (["--count", "x"], {}, "argument --count: invalid int value: 'x'"),
    ([], {"DEMO_COUNT": "x"}, "argument --count: invalid int value: 'x'"),
    (["--mode", "quick"], {}, "argument --mode: invalid choice: 'quick' (choose from 'fast', "
                              "'slow')"),
    ([], {"DEMO_MODE": "quick"}, "argument --mode: invalid choice: 'quick' (choose from "
                                 "'fast', 'slow')"),
    ([], {"DEMO_LEVEL": "3"}, "argument --level: invalid choice: '3' (choose from 1, 2)"),
    ([], {"DEMO_LEVEL": "one"}, "argument --level: invalid int value: 'one'"),
    ([], {"DEMO_LOUD": "ture"}, "argument --loud: 'ture' is neither on"),
])
def test_a_bad_flag_or_twin_is_one_usage_error(argv: list[str], env: dict[str, str], said: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parser(env).parse_args(argv)
    assert exc.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith(f"demo: error: {said}"), last


@pytest.mark.parametrize("text,on", [("1", True), ("TRUE", True), ("yes", True), ("On", True),
                                     ("", False), ("0", False), ("False", False), ("no", False),
                                     ("off", False)])
def test_a_switch_twin_says_on_or_off(text: str, on: bool) -> None:
    assert on_off(text) is on
    assert parser({"DEMO_LOUD": text}).parse_args([]).loud is on


def test_help_shows_each_twin_and_default() -> None:
    shown = " ".join(parser({}).format_help().split())
    for twin in ("(env DEMO_COUNT; default: 2)", "(env DEMO_MODE; default: fast)",
                 "(env DEMO_LOUD=true; default: off)", "--mode {fast,slow}"):
        assert twin in shown
