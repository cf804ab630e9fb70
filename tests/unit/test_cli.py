"""The `pattern` command as a user meets it: streams, exit codes, one-line errors, files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import CATALOGUE, FIXTURE_CATALOGUE, run_pattern

GENERATE = ("generate", "--name", "shop", "--app-image", "nginx:1.27", "--app-port", "80",
            "--with", "file-server", "--with", "seed-loader", "--set", "seed-loader.seed=hi")
STACK = FIXTURE_CATALOGUE / "seed-loader" / "examples" / "classic.stack.yaml"


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    assert stderr.count("\n") == 1 and stderr.startswith("error: "), stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in stderr


def test_list_table_and_json() -> None:
    table = run_pattern("list")
    assert table.code == 0 and table.stdout.splitlines()[0].split() == [
        "NAME", "VERSION", "SUMMARY", "IMAGES"]
    rows = json.loads(run_pattern("list", "-o", "json").stdout)
    assert [r["name"] for r in rows] == ["file-server", "seed-loader"]
    assert rows[1] == {"name": "seed-loader", "version": "0.2.0",
                       "summary": "Load seed data into a shared folder before the app starts "
                                  "(test fixture).",
                       "images": ["localhost/busybox:1.35-static"]}


def test_show_prints_parameters_and_a_working_example() -> None:
    shown = run_pattern("show", "seed-loader")
    assert shown.code == 0
    assert "seed    string" in shown.stdout and "required" in shown.stdout
    example = shown.stdout.split("Example:\n", 1)[1].strip()
    args = __import__("shlex").split(example)[1:]
    assert run_pattern(*args).code == 0


@pytest.mark.parametrize("name", sorted(p.name for p in CATALOGUE.iterdir()
                                         if (p / "pattern.yaml").is_file()))
def test_every_shipped_pattern_shows_an_example_that_works_as_printed(name: str) -> None:
    shown = run_pattern("show", name, catalogue=CATALOGUE)
    example = shown.stdout.split("Example:\n", 1)[1].strip()
    made = run_pattern(*__import__("shlex").split(example)[1:], catalogue=CATALOGUE)
    assert made.code == 0, f"{example}: {made.stderr}"


def test_an_unknown_pattern_far_from_every_name_points_to_pattern_list() -> None:
    result = run_pattern("show", "nope", catalogue=CATALOGUE)
    assert result.code == 1
    assert_one_line_error(result.stderr, "unknown pattern 'nope' (pattern list shows them)")


def test_unknown_pattern_suggests_the_closest() -> None:
    result = run_pattern("show", "seed-loadr")
    assert result.code == 1
    assert_one_line_error(result.stderr, "unknown pattern 'seed-loadr' (did you mean seed-loader?)")


def test_generate_to_stdout_is_valid_yaml_and_deterministic() -> None:
    first, second = run_pattern(*GENERATE), run_pattern(*GENERATE)
    assert first.code == 0 and first.stdout == second.stdout and first.stderr == ""
    kinds = [d["kind"] for d in yaml.safe_load_all(first.stdout)]
    assert kinds == ["ConfigMap", "Pod"]


def test_generate_from_stdin_matches_the_file() -> None:
    from_file = run_pattern("generate", "-f", str(STACK))
    from_stdin = run_pattern("generate", "-f", "-", stdin=STACK.read_text())
    assert from_file.code == 0 and from_file.stdout == from_stdin.stdout


def test_flags_override_the_stack_file() -> None:
    result = run_pattern("generate", "-f", str(STACK), "--kind", "Deployment", "--replicas", "3")
    workload = list(yaml.safe_load_all(result.stdout))[-1]
    assert workload["kind"] == "Deployment" and workload["spec"]["replicas"] == 3


def test_all_bad_values_in_one_line_with_paths() -> None:
    result = run_pattern(*GENERATE, "--set", "seed-loader.period=5 minutes",
                         "--set", "file-server.port=abc")
    assert result.code == 1
    assert_one_line_error(result.stderr, "2 invalid values",
                          "seed-loader.period: '5 minutes' is not a duration",
                          "file-server.port: 'abc' is not of type integer")


@pytest.mark.parametrize(("args", "message"), [
    (("--set", "file-server.nope=1"), "file-server.nope: unknown parameter of file-server"),
    (("--set", "git-sync.repo=x"), "no sidecar named 'git-sync'"),
    (("--kind", "Cronjob"), "--kind: 'Cronjob' is not one of: Pod"),
    (("--k8s-version", "latest"), "must be X.Y"),
    (("--with", "nope"), "unknown pattern 'nope' ("),
])
def test_user_errors_are_one_line(args: tuple[str, ...], message: str) -> None:
    result = run_pattern(*GENERATE, *args)
    assert result.code in (1, 2)
    assert_one_line_error(result.stderr, message)


def test_usage_errors_exit_2() -> None:
    assert run_pattern("generate", "--with", "file-server").code == 2
    assert run_pattern("generate", "--app-port", "eighty").code == 2


def test_bad_stack_file_names_the_line(tmp_path: Path) -> None:
    stack = tmp_path / "stack.yaml"
    stack.write_text("apiVersion: x\nkind: [\n")
    result = run_pattern("generate", "-f", str(stack))
    assert result.code == 1
    assert_one_line_error(result.stderr, f"{stack}:3: not valid YAML")


def test_output_file_is_written_and_hand_written_files_are_protected(tmp_path: Path) -> None:
    target = tmp_path / "shop.yaml"
    assert run_pattern(*GENERATE, "--output-file", str(target)).code == 0
    assert target.read_text() == run_pattern(*GENERATE).stdout
    assert run_pattern(*GENERATE, "--set", "file-server.port=9090", "-o", str(target)).code == 0
    assert "9090" in target.read_text()  # our own output may be regenerated in place
    mine = tmp_path / "mine.yaml"
    mine.write_text("my notes\n")
    refused = run_pattern(*GENERATE, "--output-file", str(mine))
    assert refused.code == 1 and mine.read_text() == "my notes\n"
    assert_one_line_error(refused.stderr, "pass --force")
    assert run_pattern(*GENERATE, "-o", str(mine), "--force").code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.yaml", "shop.yaml"]


@pytest.mark.parametrize("flag", ["--output-file", "-o"])
def test_an_output_file_ending_in_a_slash_is_refused_not_written_without_it(
        tmp_path: Path, flag: str) -> None:
    refused = run_pattern(*GENERATE, flag, f"{tmp_path}/out/")
    assert refused.code == 2 and list(tmp_path.iterdir()) == []
    assert_one_line_error(refused.stderr, "names a directory")


def test_failed_generate_leaves_the_output_untouched(tmp_path: Path) -> None:
    target = tmp_path / "shop.yaml"
    run_pattern(*GENERATE, "-o", str(target))
    before = target.read_text()
    assert run_pattern(*GENERATE, "--set", "file-server.port=1", "-o", str(target)).code == 1
    assert target.read_text() == before and len(list(tmp_path.iterdir())) == 1


def test_validate_accepts_our_output_and_reports_problems(tmp_path: Path) -> None:
    good = run_pattern("validate", "-", stdin=run_pattern(*GENERATE).stdout)
    assert good.code == 0 and "2 object(s) valid" in good.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
                   "spec: {containers: [{name: a, image: 'x:1', imagePulPolicy: Always}]}\n")
    result = run_pattern("validate", str(bad))
    assert result.code == 1
    assert result.stdout == (f"{bad}: Pod p: spec.containers[0].imagePulPolicy: unknown key "
                             "(did you mean imagePullPolicy?)\n")
    assert_one_line_error(result.stderr, "1 problem(s) in 1 object(s)")


def test_no_colour_when_not_a_terminal_or_no_color() -> None:
    result = run_pattern("show", "nope", env={"NO_COLOR": "1"})
    assert "\033[" not in result.stderr


def test_help_has_examples_and_the_default_target() -> None:
    result = run_pattern("generate", "--help")
    assert result.code == 0 and "Examples:" in result.stdout and "default 1.33" in result.stdout


def test_every_help_page_works_without_rich() -> None:
    """The krm and webhook images stage only what the generator imports, and rich is not among
    it: every command's --help (and an error) must not reach for it."""
    script = (
        "import sys\nsys.modules['rich'] = None\n"
        "from generator.cli import app\nimport typer\n"
        "command = typer.main.get_command(app)\n"
        "def walk(group, words):\n"
        "    yield words\n"
        "    for name, sub in getattr(group, 'commands', {}).items():\n"
        "        yield from walk(sub, [*words, name])\n"
        "from typer.testing import CliRunner\n"
        "runner = CliRunner()\n"
        "for words in walk(command, []):\n"
        "    result = runner.invoke(app, [*words, '--help'])\n"
        "    assert result.exit_code == 0, (words, result.output, result.exception)\n"
        "result = runner.invoke(app, ['generate', '--no-such-flag'])\n"
        "assert result.exit_code == 2, result.output\n"
        "print('ok')\n")
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=False)
    assert (ran.returncode, ran.stdout) == (0, "ok\n"), ran.stderr[-2000:]
