"""Rule 2 and 3 of issue 17: a check means the whole value, and a flag is checked exactly like the
stack file's field of the same meaning.

Every `pattern` in every schema we ship (the pattern meta-schema, the stack schema, each
catalogue pattern's parameters) must be anchored with `\\A...\\Z` (the meta-schema refuses a new
one that is not), and every format refuses a trailing newline and control characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import CATALOGUE, FIXTURE_CATALOGUE, run_pattern

from generator import schema
from generator.catalogue import Catalogue, meta_schema
from generator.stack import FLAG_FIELDS, check_flags, stack_from_dict, stack_schema

CATALOGUES = [Catalogue(CATALOGUE), Catalogue(FIXTURE_CATALOGUE)]
WHOLE_VALUE_FORMATS = ["duration", "absolute-path", "uri", "git-url", "dns-label", "quantity",
                       "semver"]


def _nodes(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node (a mapping) under `node`, with where it is."""
    if isinstance(node, dict):
        yield where, node
        for key, child in node.items():
            yield from _nodes(child, f"{where}.{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _nodes(child, f"{where}[{index}]")


def _schemas() -> Iterator[tuple[str, dict[str, Any]]]:
    yield "pattern.schema.yaml", meta_schema()
    yield "stack.schema.yaml", stack_schema()
    for catalogue in CATALOGUES:
        for pattern in catalogue.all():
            yield f"{catalogue.root.name}/{pattern.name}", pattern.parameters


def _string_checks() -> list[tuple[str, dict[str, Any], list[str]]]:
    """Every string node with a pattern or a format, and the values it says are good."""
    found = []
    for name, root in _schemas():
        for where, node in _nodes(root, name):
            text_check = isinstance(node.get("pattern"), str) or node.get("format") in \
                WHOLE_VALUE_FORMATS
            if not text_check:
                continue
            good = [v for v in [*node.get("examples", []), node.get("default")]
                    if isinstance(v, str) and not schema.validate(v, node, "x", root=root)]
            found.append((where, node, good))
    return found


STRING_CHECKS = _string_checks()


def test_every_pattern_we_ship_is_anchored_to_the_whole_value() -> None:
    patterns = [(where, node["pattern"]) for where, node, _ in STRING_CHECKS
                if isinstance(node.get("pattern"), str)]
    assert len(patterns) >= 25
    bad = [(where, p, schema.anchored_problem(p)) for where, p in patterns
           if schema.anchored_problem(p)]
    assert bad == []


@pytest.mark.parametrize("pattern", ["^[a-z]+$", "\\A[a-z]+$", "[a-z]+", "\\Aa|b\\Z",
                                     "\\A(?!x$)[a-z]\\Z", "\\A[a-z]+\\\\Z"])
def test_the_meta_schema_refuses_a_pattern_that_is_not_anchored(pattern: str) -> None:
    node = {"type": "string", "pattern": pattern, "description": "d", "examples": ["a"]}
    doc = {"apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Pattern",
           "metadata": {"name": "x"},
           "spec": {"version": "0.1.0", "summary": "s", "description": "d", "images": {},
                    "parameters": {"type": "object", "properties": {"p": node}}}}
    problems = schema.validate(doc, meta_schema(), "pattern")
    assert len(problems) == 1 and "anchored to the whole value" in problems[0], problems


def _mutations(value: str) -> st.SearchStrategy[str]:
    """`value` with a newline, a control character or a line separator put somewhere in it."""
    bad = st.sampled_from(["\n", "\r", "\t", "\x00", "\x1b", "\x7f", "\x85", "\u2028"])
    return st.tuples(st.integers(0, len(value)), bad).map(
        lambda p: value[:p[0]] + p[1] + value[p[0]:])


CHECKS_WITH_GOOD_VALUES = [(w, n, g) for w, n, g in STRING_CHECKS if g]


@pytest.mark.parametrize(("where", "node", "good"), CHECKS_WITH_GOOD_VALUES,
                         ids=[c[0] for c in CHECKS_WITH_GOOD_VALUES])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_a_check_agrees_with_a_whole_value_match(where: str, node: dict[str, Any],
                                                 good: list[str], data: st.DataObject) -> None:
    """Any value with a newline or control character added is refused, unless the parameter's
    own pattern spells that character out (ssh's authorized keys are lines); and the schema
    check agrees with `re.fullmatch` of the pattern on every value tried."""
    value = data.draw(st.sampled_from(good).flatmap(_mutations))
    problems = schema.validate(value, node, where)
    pattern = node.get("pattern")
    if isinstance(pattern, str) and not problems:
        assert re.fullmatch(pattern, value) is not None
    if node.get("format") in WHOLE_VALUE_FORMATS or pattern is None or "\\n" not in pattern:
        assert problems, f"{where} accepted {value!r}"


@pytest.mark.parametrize("fmt", WHOLE_VALUE_FORMATS)
@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=30))
def test_formats_refuse_control_characters_anywhere(fmt: str, text: str) -> None:
    check = {"type": "string", "format": fmt}
    if not schema.validate(text, check, "x"):
        assert not schema.has_control(text)
        assert schema.validate(text + "\n", check, "x")


@pytest.mark.parametrize(("fmt", "value"), [
    ("uri", "https://exa\nmple.org/"), ("uri", "http://example.org/\t"),
    ("git-url", "git@example.org:shop.git\n"), ("dns-label", "my-secret\n"),
    ("duration", "10s\n"), ("absolute-path", "/var/log\n/x"), ("quantity", "64Mi\n"),
    ("semver", "1.2.3\n"),
])
def test_known_trailing_newline_escapes_are_refused(fmt: str, value: str) -> None:
    assert len(schema.validate(value, {"type": "string", "format": fmt}, "x")) == 1


@pytest.mark.parametrize(("regex", "ok"), [
    ("(", False), ("a)", False), ("[z-a]", False), ("(?<level>[A-Z]+)", True),
    ("\\b(?<level>INFO|WARN)\\b", True), ("\\d{4}-\\d{2}", True), ("\\p{L}+", False),
    ("a\nb", False),
])
def test_pcre_parameters_are_compiled_at_generate_time(regex: str, ok: bool) -> None:
    assert (not schema.validate(regex, {"type": "string", "format": "pcre"}, "x")) == ok


def test_regex_parameters_of_the_catalogue_are_pcre() -> None:
    pattern = Catalogue(CATALOGUE).get("log-collector")
    for key in ("levelRegex", "multilineStart"):
        assert pattern.parameter_properties[key]["format"] == "pcre"


@pytest.mark.parametrize(("args", "message"), [
    (("--set", "log-collector.bufferSize=1Gi\n"), "log-collector.bufferSize: '1Gi\\n'"),
    (("--set", "log-collector.multilineStart=("), "is not a valid PCRE on one line (missing )"),
    (("--set", "log-collector.levelRegex=(?<level>(x)"), "is not a valid PCRE"),
    (("--set", "log-collector.logDir=/var/log\n"), "is not an absolute path"),
])
def test_bad_regex_and_newline_values_fail_generate(args: tuple[str, ...], message: str) -> None:
    result = run_pattern("generate", "--name", "shop", "--app-image", "nginx:1.27",
                         "--with", "log-collector", "--set", "log-collector.host=logs.example.org",
                         *args, catalogue=CATALOGUE)
    assert result.code == 1 and result.stdout == "", result
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


# ---------------------------------------------------------------- rule 3: one check for flags

BAD_FLAG_VALUES: dict[str, list[Any]] = {
    "--name": ["UPPER", "shop\n", "-x", "a" * 64, ""],
    "--namespace": ["UPPER", "team\n", "a_b"],
    "--kind": ["Cronjob", "Pod\n"],
    "--replicas": [-1, 99999999999999999999],
    "--schedule": ["* * * * *\n", "\n"],
    "--k8s-version": ["latest", "1.33\n", " 1.33"],
    "--sidecar-mode": ["Native", "auto\n"],
    "--image-registry": ["x: y", "Registry.example.org", "reg.example.org/\n", ""],
    "--container": ["Web", "web\n"],
    "--app-image": ["nginx 1.27", "nginx:1.27\n", ""],
    "--app-port": [0, 65536, -1],
    "--app-env": ["A\nB", "1X", "A B"],
    "--with": ["Shop", "shop\n"],
    "--with PATTERN": ["Git-Sync", "git-sync\n"],
    "--volume": ["Data", "data\n"],
}
FLAG_CASES = [(flag, value) for flag, values in BAD_FLAG_VALUES.items() for value in values]


def test_every_flag_with_a_stack_field_has_bad_values_here() -> None:
    assert set(BAD_FLAG_VALUES) == set(FLAG_FIELDS)


def _stack_with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Stack",
                           "metadata": {"name": "shop"},
                           "spec": {"app": {"image": "nginx:1.27"},
                                    "sidecars": [{"pattern": "file-server"}]}}
    node: Any = doc
    for index, part in enumerate(path[:-1]):
        following = path[index + 1]
        if part == "[]":
            node = node[0] if node else node.append({}) or node[0]
        elif part == "*":
            node = node.setdefault("data", {})
        else:
            node = node.setdefault(part, [] if following == "[]" else {})
    if path[-1] == "[]":
        node[:] = [value]
    else:
        node[path[-1]] = value
    return doc


@pytest.mark.parametrize(("flag", "value"), FLAG_CASES, ids=[f"{f}={v!r}" for f, v in FLAG_CASES])
def test_a_bad_flag_is_refused_with_the_stack_files_words(flag: str, value: Any) -> None:
    with pytest.raises(schema_error()) as flag_error:
        check_flags([(flag, value)])
    with pytest.raises(Exception) as file_error:
        stack_from_dict(_stack_with(FLAG_FIELDS[flag], value), "stack.yaml")
    flag_words = str(flag_error.value).split(": ", 1)[1]
    assert flag_words in str(file_error.value), (str(flag_error.value), str(file_error.value))


def schema_error() -> type[Exception]:
    from generator.errors import UsageError

    return UsageError


@pytest.mark.parametrize(("args", "message"), [
    (("--namespace", "UPPER"), "--namespace: 'UPPER' is not a DNS label"),
    (("--replicas", "-1", "--kind", "Deployment"), "--replicas: -1 is less than the minimum"),
    (("--replicas", "99999999999999999999"), "--replicas: 99999999999999999999 is more than"),
    (("--image-registry", "x: y"), "--image-registry: 'x: y' must be a registry"),
    (("--app-env", "A\nB=1"), "--app-env: 'A\\nB' must be letters"),
    (("--name", "shop\n"), "--name: 'shop\\n' is not a DNS label"),
    (("--with", "file-server\n"), "--with: 'file-server\\n' is not a DNS label"),
])
def test_flags_on_the_command_line(args: tuple[str, ...], message: str) -> None:
    base = ["generate", "--name", "shop", "--app-image", "nginx:1.27", "--with", "file-server"]
    result = run_pattern(*base, *args)
    assert result.code == 2 and result.stdout == "", result
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_inject_checks_its_flags_the_same_way() -> None:
    result = run_pattern("inject", "-f", "-", "--with", "file-server",
                         "--image-registry", "x: y", stdin="apiVersion: v1\nkind: Pod\n")
    assert result.code == 2 and "--image-registry: 'x: y' must be a registry" in result.stderr


# Options of generate and inject that are not a stack file's field, and why.
NOT_STACK_FIELDS = {
    "--file": "the stack file itself", "--set": "parameter values: checked by the pattern's "
    "schema", "--app-command": "split like a shell would, any text", "--post-start": "any "
    "shell command", "--pre-stop": "any shell command", "--output": "the output format",
    "--output-file": "where to write", "--force": "a switch", "--validate": "a switch",
    "--catalogue": "a folder", "--help": "help", "--target": "a workload of the input "
    "(inject.Target checks it)", "--output-dir": "where to write the component",
}


@pytest.mark.parametrize("command", ["generate", "inject"])
def test_every_flag_is_a_stack_field_or_says_why_not(command: str) -> None:
    import typer.main

    from generator.cli import app

    click_command = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    flags = {max(p.opts, key=len) for p in click_command.params if p.opts[0].startswith("-")}
    covered = {f.split(" ")[0] for f in FLAG_FIELDS} | set(NOT_STACK_FIELDS)
    assert flags - covered == set(), "give each new flag its stack field in stack.FLAG_FIELDS"
