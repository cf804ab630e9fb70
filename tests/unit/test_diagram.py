"""`pattern diagram`: what each pod is drawn with (read back from the SVG Graphviz lays out),
the same bytes for the same input, every shipped README showing its examples' current
diagrams, and one-line errors."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import CATALOGUE, run_pattern

from generator.catalogue import Catalogue
from generator.diagram import SVG_MARKER, render
from generator.docs import DIAGRAM_START, expected_files

SVG = "{http://www.w3.org/2000/svg}"


def texts(svg: bytes) -> list[str]:
    """The text lines Graphviz drew, in document order."""
    root = ET.fromstring(svg.decode("utf-8").split("\n", 1)[1])  # after our marker comment
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def example(pattern: str, name: str) -> list[dict[str, Any]]:
    text = (CATALOGUE / pattern / "examples" / f"{name}.yaml").read_text()
    return [d for d in yaml.safe_load_all(text) if d]


def test_the_database_pod_shows_start_order_mounts_and_volumes() -> None:
    drawn = texts(render(example("ssh", "database")))
    assert "Pod/database" in drawn
    first, second = drawn.index("1. sidecar (keeps running)"), drawn.index("2. container")
    assert drawn[first + 1] == "ssh" and drawn[second + 1] == "database"
    assert "port 2222/TCP (ssh)" in drawn
    assert drawn.count("/var/lib/mysql (rw)") == 2  # the app and ssh share the data volume
    assert "/etc/ssh-sidecar/authorized-keys (ro)" in drawn
    assert "persistentVolumeClaim: database-data" in drawn


def test_services_point_at_the_container_whose_port_they_target() -> None:
    svg = render(example("tls-proxy", "legacy-web"))
    drawn = texts(svg)
    assert "Service/legacy-web-tls-proxy" in drawn
    assert "443 → https" in drawn
    edges = [g for g in ET.fromstring(svg.decode().split("\n", 1)[1]).iter(f"{SVG}g")
             if g.get("class") == "edge"]
    titles = {e.find(f"{SVG}title").text for e in edges}  # type: ignore[union-attr]
    assert "p0_s0&#45;&gt;p0_c0" in titles or "p0_s0->p0_c0" in titles  # to the tls-proxy


def test_the_same_input_gives_the_same_bytes() -> None:
    documents = example("log-rotate", "three-files-rotated-and-shipped")
    once = render(documents)
    assert render(documents) == once
    assert once.startswith((SVG_MARKER + "\n<!DOCTYPE svg").encode())
    assert b"graphviz version" not in once


def test_every_shipped_readme_shows_its_examples_current_diagrams() -> None:
    catalogue = Catalogue(CATALOGUE)
    files = expected_files(catalogue)
    for name in catalogue.names():
        root = CATALOGUE / name
        examples = sorted((root / "examples").glob("*.stack.yaml"))
        if not examples:
            continue
        readme = (root / "README.md").read_text()
        assert DIAGRAM_START in readme, f"{name}: README has no diagram markers"
        for stack in examples:
            svg = stack.with_name(stack.name.replace(".stack.yaml", ".svg"))
            assert f"](examples/{svg.name})" in readme
            assert svg.read_text() == files[svg], f"{svg} is stale"


LABEL = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=20)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=LABEL, image=LABEL, path=LABEL, volume=LABEL)
def test_any_text_is_drawn_as_written(name: str, image: str, path: str, volume: str) -> None:
    """Quotes, backslashes, <, & and braces in names reach the SVG as text, never as markup
    or DOT syntax."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "containers": [{"name": name, "image": image,
                        "volumeMounts": [{"name": volume, "mountPath": path}]}],
        "volumes": [{"name": volume, "emptyDir": {}}]}}
    drawn = [" ".join(t.split()) for t in texts(render([pod]))]
    for text in (name, image, f"{path} (rw)", volume):
        assert " ".join(text.split()) in drawn


def test_cli_writes_svg_and_png_and_keeps_other_files(tmp_path: Path) -> None:
    source = str(CATALOGUE / "ssh" / "examples" / "database.yaml")
    svg, png = tmp_path / "pod.svg", tmp_path / "pod.png"
    assert run_pattern("diagram", source, "--output-file", str(svg)).code == 0
    assert svg.read_bytes() == render(example("ssh", "database"))
    again = run_pattern("diagram", source, "--output-file", str(svg))  # ours: no --force
    assert again.code == 0, again.stderr
    assert run_pattern("diagram", source, "--output-file", str(png)).code == 0
    assert png.read_bytes().startswith(b"\x89PNG\r\n")
    mine = tmp_path / "mine.svg"
    mine.write_text("<svg/>\n")
    refused = run_pattern("diagram", source, "--output-file", str(mine))
    assert refused.code == 1
    assert "exists and was not written by pattern diagram; pass --force" in refused.stderr
    assert mine.read_text() == "<svg/>\n"
    stacked = run_pattern("diagram", "-f", str(CATALOGUE / "ssh" / "examples" /
                                               "database.stack.yaml"), catalogue=CATALOGUE)
    assert stacked.code == 0, stacked.stderr
    assert stacked.stdout.encode() == svg.read_bytes()


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["-", "--output-file", "x.jpg"], "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
     "'jpg': diagrams are svg or png"),
    (["-", "-o", "png"], "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: "
     "[{name: a, image: b}]}\n", "-o png: write it to a file with --output-file"),
    (["-"], "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", "no pods to draw"),
    ([], None, "give a manifest or stack file"),
])
def test_errors_are_one_line(tmp_path: Path, args: list[str], stdin: str | None,
                             message: str) -> None:
    done = run_pattern("diagram", *args, stdin=stdin, cwd=tmp_path)
    assert done.code != 0
    assert message in done.stderr
    assert re.fullmatch(r"error: [^\n]*\n", done.stderr), done.stderr
    assert not (tmp_path / "x.jpg").exists()
