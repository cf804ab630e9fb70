"""Rules 4 to 7 of issue 17: empty or wrong input is an error, uninject trusts nothing it reads,
no traceback ever (one line), no hang. Every case goes through `bad_input.try_bad`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from bad_input import try_bad
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import FIXTURE_CATALOGUE, run_in_process

from generator import yamlio
from generator.inject import RECORD_ANNOTATION

STACK = FIXTURE_CATALOGUE / "seed-loader" / "examples" / "classic.stack.yaml"
INJECT = ("inject", "--with", "file-server")
POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: shop}\n" \
      "spec:\n  containers:\n  - name: app\n    image: nginx:1.27\n"


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "comments.yaml").write_text("# nothing but\n# comments\n---\n")
    (tmp_path / "stack.yaml").write_text(STACK.read_text())
    (tmp_path / "pod.yaml").write_text(POD)
    (tmp_path / "empty-spec.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
                                              "spec:\n")
    return tmp_path


# ---------------------------------------------------------------- rule 4: empty or wrong input

@pytest.mark.parametrize(("args", "message"), [
    ((*INJECT, "-f", "{d}/empty.yaml"), "no Kubernetes objects in it"),
    ((*INJECT, "-f", "{d}/comments.yaml"), "no Kubernetes objects in it"),
    ((*INJECT, "-f", "/dev/null"), "/dev/null: no Kubernetes objects"),
    ((*INJECT, "-f", "-"), "<stdin>: no Kubernetes objects"),
    ((*INJECT, "-f", "{d}/stack.yaml"), "a stack file, not a manifest: make the workload with "
                                        "`pattern generate -f"),
    (("uninject", "-f", "{d}/empty.yaml"), "no Kubernetes objects in it"),
    (("uninject", "-f", "{d}/stack.yaml"), "a stack file"),
    (("validate", "{d}/empty-spec.yaml"), "1 problem(s) in 1 object(s)"),
    (("validate", "{d}/comments.yaml"), "no Kubernetes objects found"),
    (("generate", "-f", "{d}/pod.yaml"), "a Kubernetes manifest (Pod), not a stack file: add "
                                         "sidecars to it with `pattern inject -f"),
    (("generate", "-f", "{d}/empty.yaml"), "exactly one YAML document"),
])
def test_empty_or_wrong_input_is_an_error(files: Path, args: tuple[str, ...],
                                          message: str) -> None:
    result = try_bad(*(a.format(d=files) for a in args), watch=(files,))
    assert message in result.stderr, result.stderr
    assert "injected" not in result.stderr


def test_a_pod_with_an_empty_spec_is_invalid(files: Path) -> None:
    result = try_bad("validate", str(files / "empty-spec.yaml"), watch=(files,))
    assert "Pod p: spec.containers: is required" in result.stdout


def test_a_stream_without_a_pod_is_an_error() -> None:
    result = try_bad(*INJECT, "-f", "-", stdin=b"apiVersion: v1\nkind: ConfigMap\n"
                                              b"metadata: {name: c}\n")
    assert "no pod-bearing object" in result.stderr and "only: ConfigMap" in result.stderr


# ---------------------------------------------------------------- rule 6/7: unreadable input

DEEP = ("a: " + "[" * 5000 + "]" * 5000 + "\n").encode()
WIDE_ALIASES = "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10 if i else ["1"] * 10)
                       + "]\n" for i in range(8)).encode()
TOO_DEEP_BLOCK = ("a:\n" + "".join("  " * i + "b:\n" for i in range(1, 120))).encode()


@pytest.mark.parametrize("command", [
    ("generate", "-f", "-"), ("validate", "-"), ("run", "-"), ("inject", "-f", "-", "--with",
                                                               "file-server"),
    ("uninject", "-f", "-"),
])
@pytest.mark.parametrize(("stdin", "message"), [
    (None, "standard input is closed"),
    (b"\xff\xfe: x\n", "not UTF-8 text"),
    (DEEP, "nested deeper than 100 levels"),
    (TOO_DEEP_BLOCK, "nested deeper than 100 levels"),
    (WIDE_ALIASES, "once its aliases are expanded"),
    (b"a: [\n", "not valid YAML"),
    (b"\x00\x01", "not valid YAML"),
], ids=["closed", "not-utf8", "deep-flow", "deep-block", "billion-laughs", "syntax", "binary"])
def test_unreadable_stdin_is_one_line_fast(command: tuple[str, ...], stdin: bytes | None,
                                           message: str) -> None:
    result = try_bad(*command, stdin=stdin)
    assert message in result.stderr, result.stderr


def test_nesting_up_to_the_limit_still_works() -> None:
    nested: Any = {"x": 1}
    for _ in range(yamlio.MAX_DEPTH - 10):
        nested = {"a": nested}
    obj = yaml.safe_load(POD)
    obj["metadata"]["annotations"] = {"deep": json.dumps(nested)}
    obj["spec"]["containers"][0]["env"] = [{"name": "N", "value": "v"}]
    doc = yaml.safe_dump(obj) + "---\n" + yaml.safe_dump({"apiVersion": "v1", "kind": "List",
                                                          "items": [], "n": nested})
    result = run_in_process(*INJECT, "-f", "-", "--no-validate", stdin=doc.encode())
    assert result.code == 0 and result.traceback is None, result.stderr


@pytest.mark.parametrize(("command", "limit"), [
    (("generate", "-f", "-"), yamlio.STACK_FILE_LIMIT),
    (("inject", "-f", "-", "--with", "file-server"), yamlio.MANIFEST_LIMIT),
    (("validate", "-"), yamlio.MANIFEST_LIMIT),
])
def test_inputs_over_the_size_limit_are_refused_at_once(command: tuple[str, ...],
                                                        limit: int) -> None:
    result = try_bad(*command, stdin=b"# " + b"x" * limit + b"\n")
    assert f"larger than the {limit >> 20} MiB" in result.stderr


@pytest.mark.parametrize("command", [
    ("generate", "-f", "{long}"), ("validate", "{long}"), ("inject", "-f", "{long}", "--with",
                                                           "file-server"),
    ("uninject", "-f", "{long}"), ("show", "{long}"), ("list", "--catalogue", "{long}"),
])
def test_names_too_long_for_the_file_system(command: tuple[str, ...]) -> None:
    try_bad(*(a.format(long="x" * 300) for a in command))


# ---------------------------------------------------------------- rule 6: usage errors

@pytest.mark.parametrize("args", [
    ("generate", "--bogus"), ("generate", "--app-port", "eighty"), ("nope",), ("show",),
    ("inject", "--with"), ("list", "-o"), ("logs", "--tail", "x"), ("run", "--timeout"),
])
def test_usage_errors_are_one_line(args: tuple[str, ...]) -> None:
    result = try_bad(*args)
    assert result.code == 2 and "--help" in result.stderr


def test_the_summary_is_printed_only_on_success(tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text("notes\n")
    result = try_bad(*INJECT, "-f", "-", "-o", str(mine), stdin=POD.encode(), watch=(tmp_path,))
    assert "injected" not in result.stderr and "pass --force" in result.stderr
    ok = run_in_process(*INJECT, "-f", "-", stdin=POD.encode())
    assert ok.code == 0 and ok.stderr == "injected 1 of 1 pod-bearing object(s)\n"


# ---------------------------------------------------------------- rule 6: wrong types

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 2**65), st.text(max_size=5),
                    st.floats(allow_nan=True))
WRONG = st.one_of(SCALARS, st.lists(SCALARS, max_size=2),
                  st.dictionaries(st.text(max_size=3), SCALARS, max_size=2))


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*path, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*path, index))
    return found


def _replaced(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


STACK_DATA = yaml.safe_load(STACK.read_text())
FULL_STACK = _replaced(STACK_DATA, ("spec", "app"), {
    **STACK_DATA["spec"]["app"], "ports": [{"containerPort": 80}],
    "env": [{"name": "A", "value": "b"}], "volumeMounts": [{"name": "v", "mountPath": "/v"}]})
FULL_STACK["spec"]["volumes"] = [{"name": "v", "emptyDir": {}}]
FULL_STACK["spec"]["pod"] = {"serviceAccountName": "s"}
FULL_STACK["spec"]["sidecars"].append({"pattern": "file-server", "volumes": {
    "data": {"volume": "v"}}, "resources": {"limits": {"cpu": "1"}}})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_wrong_types_anywhere_in_a_stack_file(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(_paths(FULL_STACK)))
    stack = _replaced(FULL_STACK, path, data.draw(WRONG))
    try_bad("generate", "-f", "-", stdin=yaml.safe_dump(stack).encode(), fails=False)


MANIFEST = yaml.safe_load(
    (FIXTURE_CATALOGUE.parent / "manifests" / "shop.yaml").read_text().split("---")[-1]
    if "---" in (FIXTURE_CATALOGUE.parent / "manifests" / "shop.yaml").read_text()
    else (FIXTURE_CATALOGUE.parent / "manifests" / "shop.yaml").read_text())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_wrong_types_anywhere_in_a_manifest(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(_paths(MANIFEST)))
    text = yaml.safe_dump(_replaced(MANIFEST, path, data.draw(WRONG))).encode()
    command = data.draw(st.sampled_from([(*INJECT, "-f", "-"), ("uninject", "-f", "-"),
                                          ("validate", "-")]))
    try_bad(*command, stdin=text, fails=False)


# ---------------------------------------------------------------- rule 5: tampered records

def _injected_pod() -> dict[str, Any]:
    pod = yaml.safe_load(POD)
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "logs", "mountPath": "/logs"}]
    pod["spec"]["volumes"] = [{"name": "logs", "emptyDir": {}}]
    result = run_in_process(*INJECT, "--with", "seed-loader", "--set", "seed-loader.seed=x",
                            "-f", "-", stdin=yaml.safe_dump(pod).encode())
    assert result.code == 0, result.stderr
    return next(d for d in yaml.safe_load_all(result.stdout) if d["kind"] == "Pod")


INJECTED = _injected_pod()
RECORD = json.loads(INJECTED["metadata"]["annotations"][RECORD_ANNOTATION])


def _with_record(record: Any) -> bytes:
    pod = copy.deepcopy(INJECTED)
    pod["metadata"]["annotations"][RECORD_ANNOTATION] = \
        record if isinstance(record, str) else json.dumps(record)
    return yaml.safe_dump(pod).encode()


@pytest.mark.parametrize(("change", "message"), [
    ({"containers": ["app"]}, "not a sidecar it added"),
    ({"initContainers": ["app"]}, "which the pod does not have"),
    ({"app": "nope"}, "app container 'nope' is not in the pod"),
    ({"annotations": {"sidecar-patterns.io/patterns": 7}}, "is not of type string or null"),
    ({"volumes": ["logs"]}, "would keep mounts of volumes it removes: logs"),
    ({"mounts": ["elsewhere"]}, "mounts the app container does not have"),
    ({"created": {"spec": "absent"}}, "is not one of"),
    ({"podFields": {"hostNetwork": True}}, "is not one of"),
    ({"sidecars": "all"}, "is not of type array"),
    ({"extra": 1}, "unknown key"),
], ids=lambda v: str(v)[:30])
def test_a_tampered_record_is_refused(change: dict[str, Any], message: str) -> None:
    result = try_bad("uninject", "-f", "-", stdin=_with_record({**RECORD, **change}))
    assert message in result.stderr and "uninjected" not in result.stderr, result.stderr


@pytest.mark.parametrize("text", ["", "{", "[]", "null", "7", "[" * 3000 + "]" * 3000])
def test_a_record_that_is_not_json_of_a_record(text: str) -> None:
    result = try_bad("uninject", "-f", "-", stdin=_with_record(text))
    assert "is not a record pattern inject wrote" in result.stderr


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_tampered_record_is_refused_or_undoes_only_what_inject_added(
        data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(_paths(RECORD)))
    names = st.sampled_from(["app", "logs", "seed-loader", "file-server", "seed-loader-init"])
    value = data.draw(st.one_of(WRONG, names, st.lists(names, max_size=3)))
    result = try_bad("uninject", "-f", "-", stdin=_with_record(_replaced(RECORD, path, value)),
                     fails=False)
    if result.code != 0:
        return
    pod = next(d for d in yaml.safe_load_all(result.stdout) if d.get("kind") == "Pod")
    spec = pod["spec"]
    assert [c["name"] for c in spec["containers"]][:1] == ["app"]
    volumes = {v["name"] for v in spec.get("volumes", [])}
    for container in spec["containers"] + spec.get("initContainers", []):
        assert {m["name"] for m in container.get("volumeMounts", [])} <= volumes
    assert all(isinstance(v, str) for v in pod["metadata"].get("annotations", {}).values())


@pytest.mark.parametrize(("command", "text", "message"), [
    (("generate", "-f", "-"), STACK.read_text().replace(
        "    image:", "    ports: \"80\"\n    image:"), "stack.spec.app.ports: '80' is not of type "
                                                       "array"),
    (("generate", "-f", "-"), STACK.read_text().replace(
        "    image:", "    volumeMounts: 7\n    image:"), "volumeMounts: 7 is not of type array"),
    (("validate", "-"), "apiVersion: v1\nkind: Pod\nmetadata: [1]\nspec: {}\n",
     "problem(s) in 1 object(s)"),
    ((*INJECT, "-f", "-"), "apiVersion: v1\nkind: Pod\nmetadata: [1]\nspec:\n  containers: "
     "[{name: a, image: b}]\n", ""),
    ((*INJECT, "-f", "-"), "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  "
     "containers: 7\n", ""),
])
def test_wrong_types_named_in_the_issue(command: tuple[str, ...], text: str,
                                        message: str) -> None:
    result = try_bad(*command, stdin=text.encode())
    assert message in result.stderr, result.stderr
    if command[0] == "validate":
        assert "metadata: [1] is not of type object" in result.stdout


@pytest.mark.parametrize("spec", ["{}", "{containers: []}"])
def test_run_refuses_a_pod_without_containers(spec: str) -> None:
    """It found its way to the engine before: a pod of an infra container only, left running."""
    text = f"apiVersion: v1\nkind: Pod\nmetadata: {{name: none-inside}}\nspec: {spec}\n"
    result = try_bad("run", "-", stdin=text.encode())
    assert "spec.containers is empty" in result.stderr, result.stderr


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_wrong_types_anywhere_in_what_run_reads(data: st.DataObject) -> None:
    """`pattern run` refuses a manifest it cannot translate before anything starts (no
    engine is reached: every case is refused, or fails on the image that does not exist)."""
    pod = yaml.safe_load(POD)
    pod["spec"]["containers"][0]["image"] = "localhost/none-such/image:0"
    path = data.draw(st.sampled_from(_paths(pod)))
    text = yaml.safe_dump(_replaced(pod, path, data.draw(WRONG))).encode()
    try_bad("run", "-", stdin=text, fails=False)
