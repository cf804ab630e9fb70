"""Every pattern, shipped or fixture: valid metadata, current docs and examples, safe templates."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import CATALOGUE, FIXTURE_CATALOGUE, ROOT

from generator import schema
from generator.catalogue import Catalogue, Pattern, load_pattern, meta_schema
from generator.compose import compose
from generator.docs import stale_files
from generator.errors import CatalogueError, PatternError
from generator.runner.plan import expand_references
from generator.sidecars import SidecarRequest
from generator.stack import Stack
from generator.validate import check_documents
from generator.yamlio import load_documents

CATALOGUES = [Catalogue(CATALOGUE), Catalogue(FIXTURE_CATALOGUE)]
PATTERNS = [(c, p) for c in CATALOGUES for p in c.all()]
IDS = [f"{c.root.name}/{p.name}" for c, p in PATTERNS]
# The demo app mounts a ConfigMap, for patterns that work on the app's own volumes
# (config-reloader watches it at its example path).
APP = {"image": "docker.io/library/debian:bookworm-slim", "command": ["sleep", "infinity"],
       "volumeMounts": [{"name": "demo-config", "mountPath": "/etc/nginx/conf",
                         "readOnly": True}]}
APP_VOLUMES = ({"name": "demo-config", "configMap": {"name": "demo-config"}},)


def required_values(pattern: Pattern) -> dict[str, Any]:
    """The first example of each required parameter, and what those examples need with them
    (`x-example-with`)."""
    values = {k: pattern.parameter_properties[k]["examples"][0]
              for k in pattern.required_parameters}
    for key in pattern.required_parameters:
        values = {**pattern.parameter_properties[key].get("x-example-with", {}), **values}
    return values


def render(catalogue: Catalogue, pattern: Pattern, values: dict[str, Any],
           **stack: Any) -> list[dict[str, Any]]:
    request = SidecarRequest(pattern.name, pattern.name, values=values)
    return compose(Stack(name="demo", app=copy.deepcopy(APP), sidecars=(request,),
                         volumes=copy.deepcopy(APP_VOLUMES), **stack), catalogue, [])


@pytest.mark.parametrize("catalogue", CATALOGUES, ids=lambda c: c.root.name)
def test_generated_docs_and_examples_are_current(catalogue: Catalogue) -> None:
    assert stale_files(catalogue) == [], "run: python -m generator.docs --write"


@pytest.mark.parametrize(("catalogue", "pattern"), PATTERNS, ids=IDS)
def test_metadata_agrees_with_the_reference_validator(catalogue: Catalogue,
                                                     pattern: Pattern) -> None:
    jsonschema.Draft202012Validator(meta_schema()).validate(pattern.raw)


@pytest.mark.parametrize(("catalogue", "pattern"), PATTERNS, ids=IDS)
@pytest.mark.parametrize("mode", ["native", "classic"])
def test_every_pattern_renders_a_valid_pod(catalogue: Catalogue, pattern: Pattern,
                                           mode: str) -> None:
    docs = render(catalogue, pattern, required_values(pattern), sidecar_mode=mode)
    assert check_documents(docs, "1.33") == []
    spec = docs[-1]["spec"]
    containers = spec.get("initContainers", []) + spec["containers"]
    sidecar = next(c for c in containers if c["name"] == pattern.name)
    declared = {p.name for p in pattern.ports}
    # Every declared port is listed by name (but one of a mode the values do not choose, its
    # role says so: "...only"); a range (ftp's passive ports) adds unnamed ones.
    listed = {p["name"] for p in sidecar.get("ports", []) if "name" in p}
    assert listed <= declared
    assert all("only" in p.role for p in pattern.ports if p.name in declared - listed)


@pytest.mark.parametrize(("catalogue", "pattern"), [p for p in PATTERNS
                                                    if p[0].root == CATALOGUE], ids=lambda x: "")
def test_companion_images_exist_at_the_named_version(catalogue: Catalogue,
                                                     pattern: Pattern) -> None:
    for reference in pattern.images.values():
        repository, tag = reference.rsplit(":", 1)
        name = repository.removeprefix("ghcr.io/sidecar-patterns/")
        version_file = ROOT / "images" / name / "VERSION"
        assert version_file.is_file(), f"{reference}: no images/{name}/"
        assert version_file.read_text().strip() == tag


def _shape(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _shape(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_shape(v) for v in node]
    return type(node).__name__


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def _string_parameters() -> list[tuple[Catalogue, Pattern, str]]:
    found = []
    for catalogue, pattern in PATTERNS:
        for key, prop in pattern.parameter_properties.items():
            kind = prop["type"]
            item_kind = prop.get("items", {}).get("type")
            if "string" in kind or (kind == "array" and item_kind == "string"):
                found.append((catalogue, pattern, key))
    return found


STRING_PARAMETERS = _string_parameters()


@pytest.mark.parametrize(("catalogue", "pattern", "key"), STRING_PARAMETERS,
                         ids=[f"{p.name}.{k}" for _, p, k in STRING_PARAMETERS])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(st.text(), st.sampled_from([
    "a: b", "x\n- y: z", "'\"`", "#c", "{{ 7*7 }}", "{% raw %}", "!!python/object:os.system",
    "---\nkind: Secret", "}\n;", "$(reboot)", "\\", "\u2028", "/ok/path", "10s"])))
def test_user_text_never_changes_the_shape(catalogue: Catalogue, pattern: Pattern, key: str,
                                           text: str) -> None:
    """A value lands verbatim at its field (as the container sees it, after the kubelet's
    `$(VAR)` expansion), or is refused with a user error; never new YAML."""
    prop = pattern.parameter_properties[key]
    base_values = {**required_values(pattern), **prop.get("x-example-with", {})}
    if text in prop.get("enum", ()):
        return  # a valid choice, not user text: it may change the shape (hypothesis draws
        # string literals of the code under test, the enum's members among them)
    value: Any = [text] if prop["type"] == "array" else text
    baseline_value = base_values.get(key, prop["examples"][0])
    if prop["type"] == "array" and isinstance(baseline_value, list):
        baseline_value = baseline_value[:1]  # one item, as the value under test (a command's
        # words each become a list item: validate's args)
    baseline = render(catalogue, pattern, {**base_values, key: baseline_value})
    try:
        result = render(catalogue, pattern, {**base_values, key: value})
    except PatternError:
        return
    assert _shape(result) == _shape(baseline)
    if text:
        assert any(text in leaf or text in expand_references(leaf, {})
                   for leaf in _strings(result))


def _nested_string_paths() -> list[tuple[Catalogue, Pattern, str, tuple[str, ...]]]:
    """Strings inside object and array-of-object parameters (e.g. files[].glob)."""
    found = []
    for catalogue, pattern in PATTERNS:
        for key, prop in pattern.parameter_properties.items():
            inner = prop.get("items", {}) if prop["type"] == "array" else prop
            for name, child in (inner.get("properties") or {}).items():
                if "string" in child.get("type", ""):
                    found.append((catalogue, pattern, key, (name,)))
    return found


NESTED = _nested_string_paths()


@pytest.mark.parametrize(("catalogue", "pattern", "key", "path"), NESTED,
                         ids=[f"{p.name}.{k}.{'.'.join(s)}" for _, p, k, s in NESTED])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(st.text(), st.sampled_from(["a: b", "x\n- y", "'\"`", "}\n;", "{{ 1 }}"])))
def test_nested_user_text_never_changes_the_shape(catalogue: Catalogue, pattern: Pattern,
                                                  key: str, path: tuple[str, ...],
                                                  text: str) -> None:
    prop = pattern.parameter_properties[key]
    base_values = {**required_values(pattern), **prop.get("x-example-with", {})}
    sample = copy.deepcopy(base_values.get(key, prop.get("default", prop["examples"][0])))
    target = sample[0] if prop["type"] == "array" else sample
    if not isinstance(target, dict):
        return
    baseline = render(catalogue, pattern, {**base_values, key: sample})
    target[path[0]] = text
    try:
        result = render(catalogue, pattern, {**base_values, key: sample})
    except PatternError:
        return
    assert _shape(result) == _shape(baseline)


def test_broken_patterns_are_reported_with_their_file(tmp_path: Path) -> None:
    folder = tmp_path / "seed-loader"
    shutil.copytree(FIXTURE_CATALOGUE / "seed-loader", folder)
    meta = folder / "pattern.yaml"
    meta.write_text(meta.read_text().replace("version: 0.2.0", "version: two"))
    (folder / "templates" / "init-container.yaml.j2").unlink()
    with pytest.raises(CatalogueError) as caught:
        load_pattern(folder)
    assert str(caught.value).startswith(f"{meta}: pattern.spec.version: 'two' is not a semantic")
    meta.write_text(meta.read_text().replace("version: two", "version: 0.2.0"))
    with pytest.raises(CatalogueError, match="startBeforeApp needs templates/init-container"):
        load_pattern(folder)


def test_meta_schema_is_itself_valid() -> None:
    jsonschema.Draft202012Validator.check_schema(meta_schema())
    assert load_documents((ROOT / "generator/schemas/pattern.schema.yaml").read_text(), "m")
    assert schema.validate({}, meta_schema(), "p")[0] == "p.apiVersion: is required"
