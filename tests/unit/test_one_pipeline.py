"""generate and inject are one pipeline: every pattern of the catalogue, injected into every
fixture manifest, gives output that `pattern validate` accepts, and everything either command
writes reads the same under YAML 1.1 (kubectl, the API server, PyYAML) and YAML 1.2."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from support import CATALOGUE, ROOT, run_pattern

from generator.catalogue import Catalogue, Pattern
from generator.errors import PatternError
from generator.generate import GenerateRequest, generate_manifest
from generator.inject import InjectError, inject
from generator.manifests import parse_stream
from generator.sidecars import SidecarFlags, SidecarOptions, SidecarRequest
from generator.validate import check_documents
from generator.values import parse_assignment

REAL = Catalogue(CATALOGUE)
PATTERNS = REAL.all()
MANIFESTS = sorted((ROOT / "tests" / "fixtures" / "manifests").glob("*.yaml"))
# Plain scalars YAML 1.1 reads as something other than the text (booleans, numbers, null...).
TRICKY = ["on", "off", "yes", "no", "y", "n", "Y", "NO", "true", "False", "~", "null", "1_000",
          "1:20", "0o17", "017", "0x1F", "1e3", ".inf", "-.5", "=", "<<", "2024-01-01"]


def load_12(text: str) -> list[Any]:
    return [d for d in YAML(typ="safe", pure=True).load_all(text) if d is not None]


def load_11(text: str) -> list[Any]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def assert_same_under_both(text: str) -> None:
    assert load_11(text) == load_12(text)


def required(pattern: Pattern) -> dict[str, Any]:
    """The first example of each required parameter, and what those examples need with them."""
    values = {k: pattern.parameter_properties[k]["examples"][0]
              for k in pattern.required_parameters}
    for key in pattern.required_parameters:
        values = {**pattern.parameter_properties[key].get("x-example-with", {}), **values}
    return values


def options_for(pattern: Pattern, values: dict[str, Any] | None = None) -> SidecarOptions:
    return SidecarOptions(requests=(SidecarRequest(pattern.name, pattern.name,
                                                   values=values or required(pattern)),))


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.name)
def test_every_pattern_injects_into_every_fixture_valid_and_yaml11_safe(
        pattern: Pattern, manifest: Any) -> None:
    text = manifest.read_text()
    try:
        result = inject([parse_stream(text, manifest.name)], options_for(pattern), REAL)
    except InjectError as error:
        if "needs pod annotation" in str(error):  # the fixture is annotated differently
            annotation = str(error).split("needs pod annotation ")[1].split("=")[0]
            assert f"{annotation}:" in text
            return
        if "not a mount of the app container" in str(error):  # config-reloader watches the
            assert "volumeMounts" not in text or "/etc/nginx/conf" not in text  # app's mounts
            return
        # a Service needs labels to select the pod by
        assert "would select no pod: the pod template has no labels (add some)" in str(error)
        assert pattern.template("objects.yaml.j2") is not None
        return
    assert result.written, "nothing was injected"
    assert check_documents(result.written, "1.33") == []
    assert_same_under_both(result.text)


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.name)
def test_every_example_generates_yaml11_safe(pattern: Pattern) -> None:
    for stack in sorted((pattern.root / "examples").glob("*.stack.yaml")):
        text, _ = generate_manifest(GenerateRequest(file=str(stack), catalogue=REAL.root))
        assert_same_under_both(text)


def _string_parameters() -> list[tuple[Pattern, str]]:
    return [(p, key) for p in PATTERNS for key, prop in p.parameter_properties.items()
            if prop.get("type") == "string"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=st.sampled_from(_string_parameters()),
       word=st.sampled_from(TRICKY) | st.text(min_size=1, max_size=12))
def test_any_accepted_value_reads_back_as_written_under_yaml_11_and_12(
        target: tuple[Pattern, str], word: str) -> None:
    pattern, key = target
    assignment = parse_assignment(f"{pattern.name}.{key}={word}")
    options = SidecarOptions(requests=options_for(pattern).requests, assignments=(assignment,))
    app = (ROOT / "tests" / "fixtures" / "manifests" / "shop.yaml").read_text()
    try:
        injected = inject([parse_stream(app, "app.yaml")], options, REAL).text
        generated, _ = generate_manifest(GenerateRequest(
            name="demo", app_image="nginx:1.27",
            sidecars=SidecarFlags(with_=(pattern.name,), set_=(
                *(f"{pattern.name}.{k}={v}" for k, v in required(pattern).items()),
                f"{pattern.name}.{key}={word}")),
            catalogue=REAL.root, validate=False))
    except PatternError:
        return  # refused in one line (the schema, a combination): nothing is written
    for text in (injected, generated):
        assert_same_under_both(text)


def test_generate_and_inject_accept_the_same_sidecar_flags(tmp_path: Any) -> None:
    flags = ["--with", "sync=git-sync", "--set", "sync.repo=https://example.org/shop.git",
             "--volume", "sync.code=code", "--k8s-version", "1.30", "--sidecar-mode", "native"]
    stack = tmp_path / "stack.yaml"
    stack.write_text("apiVersion: sidecar-patterns.io/v1alpha1\nkind: Stack\n"
                     "metadata: {name: web}\nspec:\n  kind: Deployment\n"
                     "  app: {image: 'nginx:1.27'}\n"
                     "  volumes: [{name: code, emptyDir: {}}]\n")
    generated = run_pattern("generate", "-f", str(stack), *flags, catalogue=CATALOGUE)
    assert generated.code == 0, generated.stderr
    app = tmp_path / "app.yaml"
    app.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
                   "  selector: {matchLabels: {app: web}}\n  template:\n"
                   "    metadata: {labels: {app: web}}\n    spec:\n"
                   "      containers: [{name: web, image: 'nginx:1.27'}]\n"
                   "      volumes: [{name: code, emptyDir: {}}]\n")
    injected = run_pattern("inject", "-f", str(app), *flags, catalogue=CATALOGUE)
    assert injected.code == 0, injected.stderr
    for text in (generated.stdout, injected.stdout):
        pod = load_11(text)[-1]["spec"]["template"]["spec"]
        assert pod["initContainers"][0]["name"] == "sync"
        assert [v["name"] for v in pod["volumes"]] == ["code", "sync-tmp"]


def test_an_injected_service_selects_the_pods_it_serves() -> None:
    app = ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
           "  selector: {matchLabels: {app: web}}\n  template:\n"
           "    metadata: {labels: {app: web, tier: front}}\n    spec:\n"
           "      containers: [{name: web, image: 'nginx:1.27'}]\n")
    ftp = REAL.get("ftp")
    result = inject([parse_stream(app, "app.yaml")], options_for(ftp), REAL)
    service = next(o for o in result.written if o["kind"] == "Service")
    assert service["spec"]["selector"] == {"app": "web"}
    assert check_documents(result.written, "1.33") == []


def test_validate_reports_a_companion_service_that_selects_nothing() -> None:
    ftp = REAL.get("ftp")
    app = ("apiVersion: v1\nkind: Pod\nmetadata: {name: web, labels: {app: web}}\nspec:\n"
           "  containers: [{name: web, image: 'nginx:1.27'}]\n")
    written = inject([parse_stream(app, "app.yaml")], options_for(ftp), REAL).written
    service = next(o for o in written if o["kind"] == "Service")
    service["spec"]["selector"] = {"app.kubernetes.io/name": "web"}
    assert check_documents(written, "1.33") == [
        "Service web-ftp: spec.selector {'app.kubernetes.io/name': 'web'} selects no pod "
        "template of this stream"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(word=st.sampled_from(["$(HOME)", "$$(HOME)", "a$b", "$", "$(LOG_COLLECTOR_FIELD_g)"])
       | st.text(alphabet="$()ABg_", min_size=1, max_size=10))
def test_a_sidecar_value_reaches_its_container_as_written_not_expanded(word: str) -> None:
    """The kubelet expands `$(NAME)` in env values: a user value must not read a variable."""
    from generator.runner.plan import plan_documents
    fields = json.dumps({"g": "other", "h": word})
    generated, _ = generate_manifest(GenerateRequest(
        name="demo", app_image="nginx:1.27",
        sidecars=SidecarFlags(with_=("log-collector",), set_=(f"log-collector.fields={fields}",)),
        catalogue=REAL.root, validate=False))
    (plan,) = plan_documents(list(yaml.safe_load_all(generated)), {}, "/run/files")
    env = {e["name"]: e.get("value") for c in plan.play["spec"]["containers"]
           for e in c.get("env", [])}
    assert env["LOG_COLLECTOR_FIELD_h"] == word
