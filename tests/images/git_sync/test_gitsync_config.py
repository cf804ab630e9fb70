"""Pure functions of the git-sync sidecar: configuration, backoff, trigger auth, ref picking."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest
from gitsync.cli import next_delay
from gitsync.config import ConfigError, load_config, parse_bind, parse_duration, redact_url
from gitsync.log import format_line
from gitsync.publish import exchange
from gitsync.server import authorize
from gitsync.sync import not_found_message, parse_ls_remote, pick_ref

BASE = ["--repo", "https://example.com/app.git", "--root", "/git"]


@pytest.mark.parametrize(("text", "seconds"), [
    ("10", 10.0), ("10s", 10.0), ("1m", 60.0), ("1m30s", 90.0), ("500ms", 0.5), ("2h", 7200.0),
])
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten", "10 s", "5x", "1m-3s"])
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(ConfigError, match="invalid duration"):
        parse_duration(text)


def test_period_below_floor_is_rejected() -> None:
    with pytest.raises(ConfigError, match="below the floor of 1s"):
        load_config([*BASE, "--period", "500ms"], {})


def test_defaults() -> None:
    cfg = load_config(BASE, {})
    assert (cfg.ref, cfg.link, cfg.period_s, cfg.depth) == ("HEAD", "current", 10.0, 1)
    assert (cfg.submodules, cfg.publish, cfg.max_failures) == ("off", "symlink", 3)
    assert cfg.http_bind == ("0.0.0.0", 8729)
    assert cfg.ssh_host_key_check is True


def test_environment_twin_applies_and_flag_wins() -> None:
    env = {"GITSYNC_REF": "release", "GITSYNC_PERIOD": "30s", "GITSYNC_ONE_TIME": "true"}
    cfg = load_config([*BASE, "--period", "5s"], env)
    assert cfg.ref == "release"
    assert cfg.period_s == 5.0
    assert cfg.one_time is True


def test_required_flags_come_from_environment_too() -> None:
    cfg = load_config([], {"GITSYNC_REPO": "git://h/r", "GITSYNC_ROOT": "/v"})
    assert cfg.repo == "git://h/r"
    assert cfg.root == Path("/v")


@pytest.mark.parametrize(("flags", "message"), [
    (["--ref", "a..b"], "invalid --ref"),
    (["--ref", "with space"], "invalid --ref"),
    (["--link", "../escape"], "invalid --link"),
    (["--submodules", "yes"], "--submodules must be one of"),
    (["--publish", "copy"], "--publish must be one of"),
    (["--depth", "-1"], "--depth must be >= 0"),
    (["--max-failures", "0"], "--max-failures must be >= 1"),
    (["--password-file", "/s/token"], "--password-file needs --username"),
    (["--http-bind", "localhost"], "invalid --http-bind"),
])
def test_bad_flags_name_the_flag(flags: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config([*BASE, *flags], {})


def test_missing_repo_is_explained() -> None:
    with pytest.raises(ConfigError, match="--repo is required"):
        load_config(["--root", "/git"], {})


def test_http_bind_forms() -> None:
    assert parse_bind(":9000") == ("0.0.0.0", 9000)
    assert parse_bind("127.0.0.1:8729") == ("127.0.0.1", 8729)
    assert parse_bind("off") is None


def test_passwords_in_urls_never_reach_logs() -> None:
    line = format_line("error", "sync_failed",
                       {"error": "fatal: unable to access 'https://bob:s3cr3t@host/r.git/'"}, 0.0)
    assert "s3cr3t" not in line
    assert "bob:***@host" in line
    assert redact_url("ssh://git@host/repo") == "ssh://git@host/repo"


def test_log_values_with_spaces_are_quoted() -> None:
    line = format_line("info", "x", {"a": "b c", "n": 3}, 0.0)
    assert line.endswith('event=x a="b c" n=3')


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = [next_delay(2.0, n, 30.0) for n in range(7)]
    assert delays == [2.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert next_delay(120.0, 3, 30.0) == 120.0  # the cap never shortens the period


def test_trigger_authorization() -> None:
    assert authorize("tok", None, None, b"") == 401
    assert authorize("tok", "Bearer tok", None, b"") == 202
    assert authorize("tok", "bearer tok", None, b"") == 202
    assert authorize("tok", "Bearer nope", None, b"") == 403
    assert authorize("tok", "Basic dG9rOnRvaw==", None, b"") == 403
    body = b'{"ref":"refs/heads/main"}'
    good = "sha256=" + hmac.new(b"tok", body, hashlib.sha256).hexdigest()
    assert authorize("tok", None, good, body) == 202
    assert authorize("tok", None, good, body + b" ") == 403


def test_ref_picking_prefers_branch_over_tag() -> None:
    refs = parse_ls_remote("a" * 40 + "\trefs/heads/v1\n" + "b" * 40 + "\trefs/tags/v1\n")
    assert pick_ref("v1", refs) == "refs/heads/v1"
    assert pick_ref("refs/tags/v1", refs) == "refs/tags/v1"
    assert pick_ref("v2", refs) is None


def test_not_found_message_explains_deleted_and_short_hash() -> None:
    assert "deleted or renamed" in not_found_message("feature", "c" * 40)
    assert "full 40-character hash" in not_found_message("abc1234", None)


def test_exchange_swaps_two_directories(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "which").write_text("a")
    (b / "which").write_text("b")
    exchange(a, b)
    assert (a / "which").read_text() == "b"
    assert (b / "which").read_text() == "a"


def test_exechook_argv_items_keep_their_text_and_need_no_shell() -> None:
    cfg = load_config([*BASE, "--exechook-arg=kill", "--exechook-arg=-HUP",
                       "--exechook-arg=$(reboot); x"], {})
    assert cfg.exechook_argv == ("kill", "-HUP", "$(reboot); x")
    from_env = load_config(BASE, {"GITSYNC_EXECHOOK_ARG": '["touch", "a b"]'})
    assert from_env.exechook_argv == ("touch", "a b")
    shell = load_config([*BASE, "--exechook-command", "echo $GITSYNC_HASH"], {})
    assert shell.exechook_argv == ("/bin/sh", "-c", "echo $GITSYNC_HASH")
    assert load_config(BASE, {}).exechook_argv == ()


@pytest.mark.parametrize(("flags", "env", "message"), [
    (["--exechook-arg=true", "--exechook-command", "true"], {}, "not both"),
    ([], {"GITSYNC_EXECHOOK_ARG": "kill -HUP 1"}, "JSON array of strings"),
    ([], {"GITSYNC_EXECHOOK_ARG": '["kill", 1]'}, "JSON array of strings"),
])
def test_bad_exechook_forms_are_explained(flags: list[str], env: dict[str, str],
                                          message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config([*BASE, *flags], env)
