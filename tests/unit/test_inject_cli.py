"""`pattern inject` / `pattern uninject` as a user runs them: files, folders, stdin, exit codes."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from support import ROOT, run_pattern

MANIFESTS = ROOT / "tests" / "fixtures" / "manifests"
SHOP = MANIFESTS / "shop.yaml"
WITH = ("--with", "file-server", "--with", "seed-loader", "--set", "seed-loader.seed=hi")


def one_line_error(stderr: str, *fragments: str) -> None:
    assert stderr.count("\n") == 1 and stderr.startswith("error: "), stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in stderr, stderr


def test_inject_then_uninject_through_pipes_gives_the_file_back() -> None:
    injected = run_pattern("inject", "-f", "-", *WITH, stdin=SHOP.read_text())
    assert injected.code == 0, injected.stderr
    assert injected.stderr == "injected 1 of 1 pod-bearing object(s)\n"
    kinds = [d["kind"] for d in yaml.safe_load_all(injected.stdout)]
    assert kinds == ["ConfigMap", "Service", "ConfigMap", "Deployment", "HorizontalPodAutoscaler"]
    again = run_pattern("inject", "-f", "-", *WITH, stdin=injected.stdout)
    assert again.stdout == injected.stdout
    back = run_pattern("uninject", "-f", "-", stdin=injected.stdout)
    assert back.code == 0 and back.stdout == SHOP.read_text()
    assert back.stderr == "uninjected 1 of 1 pod-bearing object(s)\n"


def test_several_files_and_a_folder_make_one_stream_in_order(tmp_path: Path) -> None:
    folder = tmp_path / "k8s"
    folder.mkdir()
    shutil.copy(MANIFESTS / "batch.yaml", folder / "b.yaml")
    shutil.copy(MANIFESTS / "list.yaml", folder / "a.yml")
    (folder / "notes.txt").write_text("not a manifest")
    result = run_pattern("inject", "-f", str(SHOP), "-f", str(folder), "--with", "file-server")
    assert result.code == 0, result.stderr
    documents = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in documents] == [
        "ConfigMap", "Service", "Deployment", "HorizontalPodAutoscaler",  # shop.yaml
        "List",  # k8s/a.yml before k8s/b.yaml
        "Job", "CronJob"]
    assert result.stderr.endswith("injected 5 of 5 pod-bearing object(s)\n")


def test_output_file_never_replaces_the_input_or_a_file_without_force(tmp_path: Path) -> None:
    source = tmp_path / "app.yaml"
    shutil.copy(SHOP, source)
    in_place = run_pattern("inject", "-f", str(source), "--with", "file-server",
                           "--output-file", str(source))
    one_line_error(in_place.stderr, f"--output-file {source}: is also an input ({source})")
    assert source.read_text() == SHOP.read_text()
    target = tmp_path / "injected.yaml"
    done = run_pattern("inject", "-f", str(source), "--with", "file-server",
                       "--output-file", str(target))
    assert done.code == 0 and done.stdout == ""
    assert done.stderr.endswith(f"wrote {target}\n")
    assert "file-server" in target.read_text()
    again = run_pattern("uninject", "-f", str(target), "--output-file", str(target))
    one_line_error(again.stderr, f"--output-file {target}: is also an input")
    restored = tmp_path / "restored.yaml"
    restored.write_text("mine\n")
    kept = run_pattern("uninject", "-f", str(target), "--output-file", str(restored))
    one_line_error(kept.stderr, f"--output-file {restored}: exists and was not written by pattern "
                   "generate; pass --force to replace it")
    undone = run_pattern("uninject", "-f", str(target), "--output-file", str(restored),
                         "--force")
    assert undone.code == 0, undone.stderr
    assert restored.read_text() == SHOP.read_text()


def test_a_broken_document_is_one_line_naming_file_document_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SHOP.read_text() + "---\nkind: Pod\nspec: {containers: [}\n")
    result = run_pattern("inject", "-f", str(bad), "--with", "file-server")
    assert result.code == 1 and result.stdout == ""
    one_line_error(result.stderr, f"{bad}: document 5 (line 140): not valid YAML")


def test_conflicts_and_refusals_are_one_line_errors() -> None:
    clash = run_pattern("inject", "-f", "-", "--with", "file-server", "--set",
                        "file-server.port=3000", stdin=SHOP.read_text())
    one_line_error(clash.stderr, "<stdin>: document 3 (Deployment/shop): spec.template.spec."
                                 "containers[0].ports[0].containerPort: port 3000")
    job = run_pattern("inject", "-f", str(MANIFESTS / "batch.yaml"), "--with", "file-server",
                      "--k8s-version", "1.27")
    assert job.code == 1
    one_line_error(job.stderr, "(Job/rebuild-index)", "never complete")


def test_usage_mistakes_exit_2() -> None:
    for args in (("inject", "-f", str(SHOP)),
                 ("inject", "-f", str(SHOP), "--with", "file-server", "--sidecar-mode", "x"),
                 ("inject", "-f", str(SHOP), "--with", "file-server", "--k8s-version", "one"),
                 ("inject", "--with", "file-server"),
                 ("uninject",)):
        result = run_pattern(*args)
        assert result.code == 2, (args, result.stderr)
        assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_unknown_pattern_and_missing_file() -> None:
    unknown = run_pattern("inject", "-f", str(SHOP), "--with", "file-servr")
    one_line_error(unknown.stderr, "unknown pattern 'file-servr' (did you mean file-server?)")
    missing = run_pattern("uninject", "-f", "nope.yaml")
    one_line_error(missing.stderr, "nope.yaml: no such file")


def test_help_shows_an_example() -> None:
    shown = run_pattern("inject", "--help")
    assert shown.code == 0 and "pattern inject -f db.yaml --with ssh" in shown.stdout
