"""`pattern krm`: a KRM function (ResourceList in, ResourceList out) with inject's engine;
problems are `results` with severity error and a non-zero exit, never a traceback."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from support import CATALOGUE, run_pattern

from generator.catalogue import Catalogue
from generator.krm import RESOURCE_LISTS, run

ITEMS = """\
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: files  # kept: the user's comment
    annotations:
      config.kubernetes.io/index: '0'
  spec:
    selector: {matchLabels: {app: files}}
    template:
      metadata: {labels: {app: files}}
      spec:
        containers:
        - name: web
          image: busybox:1.36
- apiVersion: v1
  kind: Service
  metadata: {name: files}
  spec: {ports: [{port: 80}]}
"""


def resource_list(config: Any, api: str = "config.kubernetes.io/v1") -> str:
    head = f"apiVersion: {api}\nkind: ResourceList\nitems:\n{ITEMS}"
    return head + yaml.safe_dump({"functionConfig": config})


def inject_config(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Inject",
            "metadata": {"name": "logs"},
            "spec": {"sidecars": [{"pattern": "log-collector"}], **spec}}


def test_items_are_injected_as_pattern_inject_does() -> None:
    answer = run(resource_list(inject_config(target={"kind": "Deployment", "name": "files"})),
                 Catalogue(CATALOGUE))
    assert not answer.failed
    assert "# kept: the user's comment" in answer.text
    out = yaml.safe_load(answer.text)
    stream = "---\n".join(yaml.safe_dump(i) for i in yaml.safe_load(ITEMS))
    injected = run_pattern("inject", "-f", "-", "--with", "log-collector", stdin=stream,
                           catalogue=CATALOGUE)
    assert injected.code == 0, injected.stderr
    assert out["items"] == [d for d in yaml.safe_load_all(injected.stdout) if d]
    assert out["results"] == [{"message": "injected 1 of 1 pod-bearing object(s)",
                               "severity": "info"}]
    assert out["items"][1]["metadata"]["annotations"]["config.kubernetes.io/index"] == "0"


@pytest.mark.parametrize("api", RESOURCE_LISTS)
def test_every_resource_list_version_is_answered_in_kind(api: str) -> None:
    answer = run(resource_list(inject_config(), api), Catalogue(CATALOGUE))
    assert not answer.failed
    assert yaml.safe_load(answer.text)["apiVersion"] == api


@pytest.mark.parametrize(("config", "message"), [
    ({"apiVersion": "v1", "kind": "ConfigMap"}, "functionConfig: expected apiVersion "
     "sidecar-patterns.io/v1alpha1, kind Inject"),
    (inject_config(replicas=3), "functionConfig.spec: unknown field(s) replicas"),
    ({**inject_config(), "spec": {"sidecars": []}}, "functionConfig.spec.sidecars: name at "
     "least one sidecar"),
    (inject_config(sidecars=[{"pattern": "nope"}]), "unknown pattern 'nope'"),
    (inject_config(sidecars=[{"pattern": "ssh", "values": {"port": "x"}}]), "ssh.port"),
    (inject_config(k8sVersion=1.3), "k8sVersion: write it as a string"),
    (inject_config(target={"kind": "Service", "name": "files"}),
     "functionConfig.spec.target 'Service/files': 'Service' is not a pod-bearing kind"),
    (inject_config(target={"kind": "Deployment", "name": "other"}),
     "--target Deployment/other: not in the input"),
    (inject_config(container="db"), "the pod has no container 'db' (it has: web)"),
])
def test_a_bad_function_config_is_an_error_result(config: Any, message: str) -> None:
    answer = run(resource_list(config), Catalogue(CATALOGUE))
    assert answer.failed
    out = yaml.safe_load(answer.text)
    (result,) = out["results"]
    assert result["severity"] == "error"
    assert message in result["message"], result["message"]
    assert out["items"] == yaml.safe_load(ITEMS)  # unchanged


@pytest.mark.parametrize(("text", "message"), [
    ("items: [\n", "the input is not valid YAML"),
    ("apiVersion: v1\nkind: List\nitems: []\n", "the input is not a ResourceList"),
    ("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: [1]\n",
     "items: expected a list of objects"),
])
def test_an_input_that_is_not_a_resource_list_is_an_error_result(text: str,
                                                                 message: str) -> None:
    answer = run(text, Catalogue(CATALOGUE))
    assert answer.failed
    out = yaml.safe_load(answer.text)
    assert out["kind"] == "ResourceList"
    assert out["results"][0]["severity"] == "error"
    assert message in out["results"][0]["message"]


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(spec=st.dictionaries(st.sampled_from(["sidecars", "target", "container", "k8sVersion",
                                             "sidecarMode", "imageRegistry", "x"]), JSON,
                            max_size=4))
def test_any_function_config_is_an_answer_never_a_traceback(spec: dict[str, Any]) -> None:
    config = {"apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Inject", "spec": spec}
    answer = run(resource_list(config), Catalogue(CATALOGUE))
    out = yaml.safe_load(answer.text)
    assert out["kind"] == "ResourceList"
    if answer.failed:
        assert [r["severity"] for r in out["results"]] == ["error"]
        assert "\n" not in out["results"][0]["message"]


def test_the_command_exits_non_zero_with_the_resource_list_on_stdout() -> None:
    bad = run_pattern("krm", stdin=resource_list(inject_config(sidecars=[{"pattern": "no"}])),
                      catalogue=CATALOGUE)
    assert bad.code == 1
    assert yaml.safe_load(bad.stdout)["results"][0]["severity"] == "error"
    good = run_pattern("krm", stdin=resource_list(inject_config()), catalogue=CATALOGUE)
    assert good.code == 0, good.stderr
    assert len(yaml.safe_load(good.stdout)["items"]) == 3


def _laughs(levels: int) -> str:
    """A ResourceList whose functionConfig is a "billion laughs": 10**levels values once its
    aliases are expanded, in a few hundred bytes."""
    lines = ['a0: &a0 "lol"']
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, levels + 1)]
    body = "\n".join(f"    {line}" for line in lines)
    return ("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: []\n"
            f"functionConfig:\n  spec:\n{body}\n")


@pytest.mark.parametrize(("text", "message"), [
    ("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- a: "
     + "[" * 150 + "]" * 150 + "\n", "<stdin>:4: nested deeper than 100 levels"),
    (_laughs(9), "<stdin>: more than 1,000,000 values once its aliases are expanded"),
])
def test_a_deep_or_exploding_resource_list_is_an_error_result(text: str, message: str) -> None:
    """The limits of the project's one YAML reader (yamlio) hold before ruamel parses."""
    answer = run(text, Catalogue(CATALOGUE))
    assert answer.failed
    assert yaml.safe_load(answer.text)["results"] == [{"message": message, "severity": "error"}]


def test_a_huge_resource_list_on_stdin_is_an_error_result_not_a_hang() -> None:
    item = ("- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: big}\n"
            f"  data: {{x: {'y' * 1024}}}\n")
    huge = ("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n"
            + item * 3000)  # about 3 MiB, past the 2 MiB every input may have
    done = run_pattern("krm", stdin=huge, catalogue=CATALOGUE)
    assert done.code == 1
    (result,) = yaml.safe_load(done.stdout)["results"]
    assert result == {"message": "<stdin>: larger than the 2 MiB this command reads",
                      "severity": "error"}
    assert done.stderr.strip().endswith("<stdin>: larger than the 2 MiB this command reads")
    assert "Traceback" not in done.stderr
