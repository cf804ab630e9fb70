"""images/_common/stage.py, run on this host (Debian 12, like the images' build stage) into a
temporary root: what it stages, what it leaves out, and that it is byte-for-byte repeatable."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

STAGE = Path(__file__).resolve().parents[3] / "images" / "_common" / "stage.py"
PROGRAM = '''\
import json

def later():
    import csv  # lazily, on a path import time does not take
    return csv
'''


def stage(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/usr/bin/python3", str(STAGE), "--root", str(root), *args],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "SOURCE_DATE_EPOCH": "0"})


def digest(root: Path) -> str:
    """Names, modes, mtimes, link targets and contents of the whole tree."""
    hashed = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        hashed.update(f"{path.relative_to(root)} {info.st_mode:o} {info.st_mtime_ns}".encode())
        if path.is_symlink():
            hashed.update(os.readlink(path).encode())
        elif path.is_file():
            hashed.update(path.read_bytes())
    return hashed.hexdigest()


def stage_program(work: Path) -> Path:
    """Stage /bin/true and Python for PROGRAM (written to work/app) into work/root."""
    (work / "app").mkdir()
    (work / "app" / "program.py").write_text(PROGRAM)
    result = stage(work / "root", "--user", "65532", "--bin", "/bin/true",
                   "--path", "/etc/nsswitch.conf", "--python-path", str(work / "app"),
                   "--python-entry", "program")
    assert result.returncode == 0, result.stderr
    return work / "root"


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Path("/usr/bin/python3").is_file() or sys.platform != "linux":
        pytest.fail("stage.py runs in a Debian build stage; this host has no /usr/bin/python3")
    return stage_program(tmp_path_factory.mktemp("stage"))


def test_binaries_come_with_the_libraries_and_the_symlinks_that_lead_to_them(
        staged: Path) -> None:
    assert (staged / "usr/bin/true").is_file()
    if Path("/bin").is_symlink():  # merged /usr: /bin -> usr/bin is recreated, not copied
        assert os.readlink(staged / "bin") == os.readlink("/bin")
    assert list(staged.glob("usr/lib/*/libc.so.6"))
    loader = Path("/lib64/ld-linux-x86-64.so.2")
    if loader.exists():
        assert (staged / str(loader).lstrip("/")).exists()


def test_python_gets_the_modules_imported_now_and_later_and_nothing_else(staged: Path) -> None:
    stdlib = staged / "usr/lib/python3.11"
    assert (stdlib / "json" / "decoder.py").is_file()
    assert (stdlib / "csv.py").is_file()  # imported only inside a function
    assert (stdlib / "__pycache__" / "csv.cpython-311.pyc").is_file()  # read-only root later
    assert not (stdlib / "asyncio").exists()
    assert not (stdlib / "unittest").exists()
    assert not (staged / "app").exists()  # the program's own code is the Containerfile's
    # dlopened by glibc when a daemon thread ends at exit (ldd does not name it)
    assert list(staged.glob("usr/lib/*/libgcc_s.so.1"))


def test_the_staged_python_runs_the_program_in_the_root(staged: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")  # the integration tests run the real images
    (staged / "opt").mkdir(exist_ok=True)
    (staged / "opt" / "program.py").write_text(PROGRAM + "print(json.dumps(later().__name__))\n")
    try:
        ran = subprocess.run(["/usr/bin/python3", "/opt/program.py"], cwd="/",
                             preexec_fn=lambda: os.chroot(staged),
                             capture_output=True, text=True, check=False,
                             env={"PYTHONDONTWRITEBYTECODE": "1"})
    finally:
        (staged / "opt" / "program.py").unlink()
        (staged / "opt").rmdir()
    assert (ran.returncode, ran.stdout) == (0, '"csv"\n'), ran.stderr


def test_the_user_entries_are_the_numeric_user(staged: Path) -> None:
    assert "sidecar:x:65532:65532:" in (staged / "etc/passwd").read_text()
    assert "sidecar:x:65532:" in (staged / "etc/group").read_text()
    assert (staged / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert (staged / "usr/sbin/nologin").is_file()  # the shell both entries name


def test_every_mtime_is_the_source_date_epoch(staged: Path) -> None:
    assert {p.lstat().st_mtime for p in staged.rglob("*")} == {0}


def test_the_same_inputs_give_the_same_tree(staged: Path, tmp_path: Path) -> None:
    assert digest(stage_program(tmp_path)) == digest(staged)


@pytest.mark.parametrize("path", ["/usr/share/doc", "/usr/share/man/man1",
                                  "/usr/share/locale", "/usr/lib/locale"])
def test_documentation_and_locales_are_refused(path: str, tmp_path: Path) -> None:
    result = stage(tmp_path / "root", "--path", path)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"stage: refusing {path} (documentation and locales stay out)"]


def test_a_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    result = stage(tmp_path / "root", "--bin", "/usr/bin/no-such-engine")
    assert result.returncode != 0
    assert result.stderr.strip() == ("stage: /usr/bin/no-such-engine does not exist in the "
                                     "build stage")


SITE = {
    "prog/__init__.py": "",
    "prog/main.py": "import thirdparty\n\ndef later():\n    import csv\n    import ns.pkg\n"
                    "    from prog import later as module\n    return csv, ns.pkg, module\n",
    "prog/later.py": "VALUE = 1\n",
    "prog/templates/one.txt": "data of the program\n",
    "prog/unused/__init__.py": "",
    "prog/unused/unread.txt": "a package nothing imports\n",
    "thirdparty/__init__.py": "",
    "thirdparty/lazy.py": "",  # imported by thirdparty on a later path
    "thirdparty/schema.json": "{}",
    "thirdparty/py.typed": "",
    "thirdparty/tests/test_it.py": "",
    "ns/pkg/__init__.py": "",  # a namespace package (ns) holding a regular one
    "unimported/__init__.py": "",
}


def stage_site(work: Path, *args: str) -> Path:
    """Stage the program `prog.main` from the site folder work/site into work/root."""
    for name, text in SITE.items():
        (work / "site" / name).parent.mkdir(parents=True, exist_ok=True)
        (work / "site" / name).write_text(text)
    result = stage(work / "root", "--user", "65532", "--python-site", str(work / "site"),
                   "--python-entry", "prog.main", *args)
    assert result.returncode == 0, result.stderr
    return work / "root" / str(work / "site").lstrip("/")


def test_a_site_stages_what_the_program_imports_with_its_data(tmp_path: Path) -> None:
    site = stage_site(tmp_path)
    staged = {str(p.relative_to(site)) for p in site.rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    assert staged == {"prog/__init__.py", "prog/main.py", "prog/later.py",
                      "prog/templates/one.txt", "thirdparty/__init__.py", "thirdparty/lazy.py",
                      "thirdparty/schema.json", "ns/pkg/__init__.py"}


def test_bytecode_only_stages_compiled_modules_that_run(tmp_path: Path) -> None:
    site = stage_site(tmp_path, "--bytecode-only", "--nobody")
    root = tmp_path / "root"
    assert (site / "prog" / "main.pyc").is_file() and not (site / "prog" / "main.py").exists()
    assert not list(root.rglob("__pycache__"))
    assert (root / "usr/lib/python3.11/os.pyc").is_file()
    assert "nobody:x:65534:65534:" in (root / "etc/passwd").read_text()
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    ran = subprocess.run(["/usr/bin/python3", "-c", "import prog.main; print(prog.main.later())"],
                         cwd="/", preexec_fn=lambda: os.chroot(root), capture_output=True,
                         text=True, check=False,
                         env={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(site)[
                             len(str(root)):]})
    assert ran.returncode == 0, ran.stderr
    assert "module 'csv'" in ran.stdout and "prog.later" in ran.stdout


def test_a_program_that_speaks_no_tls_is_staged_without_openssl(tmp_path: Path) -> None:
    """`--python-without _ssl --python-without _hashlib`: http.server still imports (no
    HTTPS), hashlib's built-in sha256 still hashes, and no OpenSSL library is staged."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "served.py").write_text(
        "import hashlib, http.server\n"
        "try:\n    import ssl\nexcept ImportError:\n    ssl = None\n"
        "print(hashlib.sha256(b'x').hexdigest()[:8], ssl)\n")
    root = tmp_path / "root"
    result = stage(root, "--python-path", str(tmp_path / "app"), "--python-entry", "served",
                   "--python-without", "_ssl", "--python-without", "_hashlib")
    assert result.returncode == 0, result.stderr
    staged = {p.name for p in root.rglob("*")}
    assert not [n for n in staged if n.startswith(("_ssl.", "_hashlib.", "libssl", "libcrypto"))]
    assert "server.py" in staged and "client.py" in staged
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    (root / "opt").mkdir()
    (root / "opt" / "served.py").write_text((tmp_path / "app" / "served.py").read_text())
    ran = subprocess.run(["/usr/bin/python3", "/opt/served.py"], cwd="/",
                         preexec_fn=lambda: os.chroot(root), capture_output=True, text=True,
                         check=False, env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert (ran.returncode, ran.stdout) == (0, "2d711642 None\n"), ran.stderr


LEAN = '''\
import hashlib
import http.client

print(hashlib.sha256(b"x").hexdigest()[:8], hasattr(http.client, "HTTPSConnection"))
'''


def test_the_stdlib_as_zipped_bytecode_runs_and_is_repeatable(
        tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "lean.py").write_text(LEAN)
    root = tmp_path / "root"
    result = stage(root, "--python-path", str(tmp_path / "app"), "--python-entry", "lean",
                   "--python-zip", "--python-without", "_ssl", "--python-without", "_hashlib")
    assert result.returncode == 0, result.stderr
    stdlib = root / "usr/lib/python3.11"
    for unwanted in ("usr/lib/*/libssl.so*", "usr/lib/*/libcrypto.so*",
                     "usr/lib/python3.11/lib-dynload/_ssl*",
                     "usr/lib/python3.11/lib-dynload/_hashlib*"):
        assert not list(root.glob(unwanted))
    assert (stdlib / "lib-dynload").is_dir()  # the exec_prefix landmark, even when empty
    # Sources left: the prefix landmark, and Debian's sitecustomize (a link out of the stdlib).
    assert {p.name for p in stdlib.rglob("*.py")} <= {"os.py", "sitecustomize.py"}
    with zipfile.ZipFile(root / "usr/lib/python311.zip") as archive:
        names = archive.namelist()
    assert "http/client.pyc" in names and "encodings/__init__.pyc" in names
    assert "ssl.pyc" not in names
    assert names == sorted(names)
    again = tmp_path / "again"
    stage(again, "--python-path", str(tmp_path / "app"), "--python-entry", "lean",
          "--python-zip", "--python-without", "_ssl", "--python-without", "_hashlib")
    assert digest(again) == digest(root)
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    (root / "opt").mkdir()
    (root / "opt" / "lean.py").write_text(LEAN)
    ran = subprocess.run(["/usr/bin/python3", "/opt/lean.py"], cwd="/",
                         preexec_fn=lambda: os.chroot(root), capture_output=True, text=True,
                         check=False, env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "2d711642 False\n", "")


def test_a_program_with_flags_answers_help(tmp_path: Path) -> None:
    """argparse imports textwrap only to format help: `--help` of a staged sidecar crashed."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "flags.py").write_text(
        "import argparse\nif __name__ == '__main__':\n"
        "    argparse.ArgumentParser(prog='flags').parse_args()\n")
    root = tmp_path / "root"
    result = stage(root, "--python-path", str(tmp_path / "app"), "--python-entry", "flags")
    assert result.returncode == 0, result.stderr
    assert (root / "usr/lib/python3.11/textwrap.py").is_file()
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    (root / "opt").mkdir()
    (root / "opt" / "flags.py").write_text((tmp_path / "app" / "flags.py").read_text())
    ran = subprocess.run(["/usr/bin/python3", "/opt/flags.py", "--help"], cwd="/",
                         preexec_fn=lambda: os.chroot(root), capture_output=True, text=True,
                         check=False, env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert ran.returncode == 0 and ran.stdout.startswith("usage: flags"), ran.stderr
