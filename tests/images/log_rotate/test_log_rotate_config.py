"""The logrotate configuration the log-rotate pattern renders: what it says for each choice,
that logrotate 3.21 itself (`logrotate -d`, in the image) accepts every rendering, the
examples' and hostile ones alike, and that bad values stop `pattern generate` in one line."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import CATALOGUE, one_error, run_pattern

from generator import images
from generator.catalogue import Catalogue
from generator.compose import compose
from generator.sidecars import SidecarRequest
from generator.stack import Stack, stack_from_dict

SIGNAL = {"mode": "create", "reopenProcess": "nginx", "reopenSignal": "USR1"}
HTTP = {"mode": "create", "reopenUrl": "http://127.0.0.1:8080/reopen", "reopenMethod": "PUT"}
# Globs the schema lets through that a shell or logrotate would read as syntax if unquoted.
ODD_GLOBS = ["*", "a?b*.log", "@x+y-z_.log", "-rf", "..", "x..log"]


def documents(values: dict[str, Any]) -> list[dict[str, Any]]:
    stack = Stack(name="demo", app={"image": "localhost/busybox:latest"},
                  sidecars=(SidecarRequest("log-rotate", "log-rotate", values=values),))
    return compose(stack, Catalogue(CATALOGUE), [])


def render(values: dict[str, Any]) -> str:
    docs = documents(values)
    conf: str = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["logrotate.conf"]
    return conf


def directives(conf: str) -> list[str]:
    return [line.strip() for line in conf.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_default_render_is_hourly_by_size_with_copytruncate_and_delayed_gzip() -> None:
    assert directives(render({})) == [
        "/var/log/app/*.log {", "hourly", "maxsize 100M", "rotate 5", "missingok",
        "notifempty", "compress", "delaycompress", "dateext", "dateformat -%Y%m%d-%H%M%S",
        "copytruncate", "}"]


def test_create_tells_the_app_once_per_run_through_the_fixed_reopen_command() -> None:
    lines = directives(render({**SIGNAL, "files": ["error.log", "info.log"], "period": "daily",
                               "maxSize": "512Ki", "rotate": 24, "compress": False}))
    assert lines[0] == "/var/log/app/error.log /var/log/app/info.log {"
    assert {"daily", "maxsize 512k", "rotate 24", "nocompress", "create", "sharedscripts",
            "postrotate", "exec log-rotate reopen", "endscript"} <= set(lines)
    assert "copytruncate" not in lines and "delaycompress" not in lines


def test_signal_turns_on_the_shared_process_namespace_and_http_does_not() -> None:
    by_signal, by_http = (next(d for d in documents(v) if d["kind"] == "Pod")
                          for v in (SIGNAL, HTTP))
    assert by_signal["spec"]["shareProcessNamespace"] is True
    assert "shareProcessNamespace" not in by_http["spec"]
    env = {e["name"]: e["value"] for e in by_http["spec"]["initContainers"][0]["env"]}
    assert env["LOG_ROTATE_REOPEN_URL"] == HTTP["reopenUrl"]
    assert env["LOG_ROTATE_REOPEN_METHOD"] == "PUT" and "LOG_ROTATE_REOPEN_PROCESS" not in env


def _example_values() -> list[dict[str, Any]]:
    found = []
    for path in sorted((CATALOGUE / "log-rotate" / "examples").glob("*.stack.yaml")):
        stack = stack_from_dict(yaml.safe_load(path.read_text()), str(path))
        found += [s.values for s in stack.sidecars if s.pattern == "log-rotate"]
    return found


RENDERINGS: list[dict[str, Any]] = [
    {}, SIGNAL, HTTP, {"dateExt": False, "compress": False, "period": "monthly"},
    {"delayCompress": False, "maxSize": "1Gi", "period": "weekly"},
    {"files": ODD_GLOBS, **SIGNAL},
]


@pytest.fixture(scope="module")
def image() -> str:
    (reference,) = images.build(["log-rotate"], registry=None, tag=None, push=False,
                                quiet=True, say=print)
    return reference


def logrotate_check(image: str, configs: dict[str, str], folder: Path) -> dict[str, str]:
    """`log-rotate check` (logrotate -d) on each config, in the image as the pod runs it: a
    read-only root and a non-root uid. Returns name -> "ok" or the errors it printed."""
    folder.chmod(0o755)
    for name, text in configs.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o644)
    # Python, not sh: the staged image has a /bin/sh (for postrotate) but no basename or tr.
    script = ("import pathlib, subprocess\n"
              "for f in sorted(pathlib.Path('/cfg').iterdir()):\n"
              "    out = subprocess.run(['log-rotate', 'check', '--config', str(f)],\n"
              "                         capture_output=True, text=True)\n"
              "    print(f.name, 'ok' if out.returncode == 0 else\n"
              "          (out.stdout + out.stderr).replace('\\n', ' '))\n")
    proc = subprocess.run(["podman", "run", "--rm", "--read-only", "--tmpfs", "/tmp",
                           "-v", f"{folder}:/cfg:ro", "--entrypoint", "python3", image, "-c",
                           script], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return dict(line.split(" ", 1) for line in proc.stdout.splitlines())


def test_logrotate_accepts_every_rendering_and_rejects_a_broken_one(image: str,
                                                                    tmp_path: Path) -> None:
    configs = {f"{i}.conf": render(v) for i, v in enumerate(RENDERINGS + _example_values())}
    configs["broken.conf"] = render({}).replace("maxsize 100M", "maxsize 100Q")
    results = logrotate_check(image, configs, tmp_path)
    assert "unknown unit 'Q'" in results.pop("broken.conf")
    assert results == {name: "ok" for name in configs if name != "broken.conf"}, results


APP = ("--name", "shop", "--app-image", "localhost/busybox:latest", "--with", "log-rotate")


@pytest.mark.parametrize(("sets", "message"), [
    (["logDir=var/log/shop"], "log-rotate.logDir: "),
    (["checkInterval=1s"], "log-rotate.checkInterval: "),
    (["rotate=0"], "log-rotate.rotate: "),
    (["period=minutely"], "log-rotate.period: "),
    (["maxSize=10M"], "must be a size such as 512Ki, 100Mi or 1Gi"),
    (["maxSize=10MB"], "log-rotate.maxSize: "),
    (['files=["logs/app.log"]'], "must be a file name or glob in logDir"),
    (['files=["a b.log"]'], "must be a file name or glob in logDir"),
    (["mode=create"], "mode create needs reopenProcess or reopenUrl"),
    (["mode=create", "reopenProcess=nginx", "reopenUrl=http://127.0.0.1/r"],
     "set reopenProcess or reopenUrl, not both"),
    (["mode=copytruncate", "reopenProcess=nginx"],
     "reopenProcess and reopenUrl are for mode create"),
    (["reopenProcess=nginx; rm -rf /"], "must be a process name"),
    (["mode=create", "reopenUrl=file:///etc/passwd"], "log-rotate.reopenUrl: "),
])
def test_bad_values_stop_generate_in_one_line(sets: list[str], message: str) -> None:
    args = [a for s in sets for a in ("--set", f"log-rotate.{s}")]
    error = one_error(run_pattern("generate", *APP, *args, catalogue=CATALOGUE))
    assert error.startswith("error: ") and message in error, error
