"""Rule 2 of issue 17 for the daemons whose config the sidecar image writes at start-up (sshd,
ProFTPD): every rendered sidecar of every example, and of hostile values the parameter schema
lets through, is prepared by the image itself (`prepare`, from the container's environment) and
the result passes the daemon's own config test (`sshd -t`, `proftpd -t`) in that image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import CATALOGUE

from generator.catalogue import Catalogue
from generator.errors import PatternError
from generator.generate import GenerateRequest, generate_manifest
from generator.kinds import pod_spec_of
from generator.sidecars import SidecarFlags

HERE = Path(__file__).parent
UID = 1000
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + "A" * 43

# pattern -> (its program in the image, --set values that make a runnable sidecar, variants)
CASES: dict[str, tuple[str, tuple[str, ...], list[tuple[str, ...]]]] = {
    "ssh": ("ssh-sidecar", ("ssh.authorizedKeysSecret=keys",), [
        ("ssh.user=a-b_c",), ("ssh.user=_x",), ("ssh.user=" + "x" * 32,),
        ("ssh.dataPath=/srv/a@b+c",), ("ssh.dataPath=/srv/x.y-z_",),
        ("ssh.dataPath=/" + "d" * 200,), ("ssh.port=65535",), ("ssh.port=1024",),
        ("ssh.user=root",), ("ssh.dataPath=/srv/a b",), ("ssh.user=a'b",),
    ]),
    "ftp": ("ftp-sidecar", ("ftp.usersSecret=users",), [
        ("ftp.masqueradeAddress=a-b.example.org",), ("ftp.masqueradeAddress=203.0.113.10",),
        ("ftp.masqueradeAddress=" + "a" * 253,), ("ftp.tls=off",), ("ftp.tls=required",
                                                                    "ftp.tlsSecret=tls"),
        ("ftp.tlsSecret=tls",), ("ftp.anonymous=true",), ("ftp.dataPath=/srv/a@b+c",),
        ("ftp.passivePortMin=40000", "ftp.passivePortMax=40019"),
        ("ftp.masqueradeAddress=a;b",), ("ftp.masqueradeAddress=x\nMasqueradeAddress y",),
    ]),
}


def _sidecar(pattern: str, file: str | None, sets: tuple[str, ...]) -> dict[str, Any] | None:
    request = GenerateRequest(
        file=file, name=None if file else "shop", app_image=None if file else "nginx:1.27",
        sidecars=SidecarFlags(with_=() if file else (pattern,), set_=sets), catalogue=CATALOGUE)
    try:
        text, _ = generate_manifest(request)
    except PatternError:
        return None
    image = Catalogue(CATALOGUE).get(pattern).images["main"]
    for doc in yaml.safe_load_all(text):
        pod = pod_spec_of(doc) or {}
        for container in pod.get("initContainers", []) + pod.get("containers", []):
            if container["image"] == image:
                return dict(container)
    raise AssertionError(f"no {pattern} container in {text[:200]}")


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """What the Secrets would hold, one folder each, readable by the sidecar's uid."""
    root = tmp_path_factory.mktemp("secrets")
    found = {}
    for name, files in {"authorized-keys": {"authorized_keys": ED25519 + " me@host\n"},
                        "users": {"users": "alice:secret123\n"}}.items():
        (root / name).mkdir()
        for file, text in files.items():
            (root / name / file).write_text(text)
        found[name] = root / name
    tls = root / "tls"
    tls.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=ftp.example.org", "-keyout", str(tls / "tls.key"),
                    "-out", str(tls / "tls.crt")], check=True, capture_output=True)
    found["tls"] = tls
    for path in root.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    shutil.copy(HERE / "daemon_check.py", root / "daemon_check.py")
    found["check"] = root / "daemon_check.py"
    return found


def _verdict(container: dict[str, Any], program: str, secrets: dict[str, Path],
             extra_env: dict[str, str] | None = None) -> str:
    command = ["podman", "run", "--rm", "--user", f"{UID}:{UID}", "--entrypoint", "python3",
               "-v", f"{secrets['check']}:/check.py:ro"]
    for mount in container.get("volumeMounts", []):
        folder = next((secrets[k] for k in ("authorized-keys", "users", "tls")
                       if mount["mountPath"].endswith("/" + k)), None)
        command += ["-v", f"{folder}:{mount['mountPath']}:ro"] if folder else \
            ["--tmpfs", f"{mount['mountPath']}:mode=1777"]
    env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    for name, value in {**env, **(extra_env or {})}.items():
        command += ["-e", f"{name}={value}"]
    result = subprocess.run([*command, container["image"], "/check.py", program],
                            capture_output=True, text=True, timeout=120, check=False)
    return result.stdout.strip() or f"FAIL: no verdict: {result.stderr.strip()[-300:]}"


@pytest.mark.parametrize("pattern", sorted(CASES))
def test_every_rendered_daemon_config_passes_the_daemons_own_test(
        pattern: str, secrets: dict[str, Path]) -> None:
    program, needed, variants = CASES[pattern]
    examples = sorted((CATALOGUE / pattern / "examples").glob("*.stack.yaml"))
    rendered = [("example " + e.name, _sidecar(pattern, str(e), ())) for e in examples]
    refused = []
    for sets in variants:
        container = _sidecar(pattern, None, (*needed, *sets))
        if container is None:
            refused.append(sets)
        else:
            rendered.append((" ".join(sets)[:60], container))
    verdicts = {label: _verdict(c, program, secrets) for label, c in rendered if c}
    assert {k: v for k, v in verdicts.items() if v != "ok"} == {}
    assert len(verdicts) >= len(examples) + len(variants) // 2, refused


def test_the_daemon_test_can_fail(secrets: dict[str, Path]) -> None:
    container = _sidecar("ssh", None, CASES["ssh"][1])
    assert container is not None
    verdict = _verdict(container, "ssh-sidecar", secrets, {"SSH_LOG_LEVEL": "BOGUS"})
    assert verdict.startswith("FAIL") and "log level" in verdict, verdict
