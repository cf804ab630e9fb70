#!/usr/bin/python3
"""Stage only what an image runs into a root folder, for a `FROM scratch` final stage.

Runs in an image's build stage (Debian, packages installed), never at run time:

    python3 /stage.py --root /staged --user 65532 \\
        --bin /usr/sbin/sshd --path /usr/lib/openssh/sftp-server \\
        --python-entry /usr/local/lib/ssh-sidecar/ssh_sidecar.py
    FROM scratch
    COPY --from=build /staged/ /

What it copies (each path with the symlinks that lead to it, e.g. Debian's /lib64 -> usr/lib64):
- `--bin`/`--path`: the files, or whole folders, named; every ELF file among them brings the
  shared libraries `ldd` names (and the dynamic loader).
- `--python-entry MODULE|SCRIPT` (repeatable): the interpreter and the stdlib modules the
  program imports. `modulefinder` reads the program's own code (imports inside functions
  too, which only run on later code paths); each stdlib module it names is then imported, and
  what lands in `sys.modules` (what the stdlib pulls in, as `python3 -X importtime` shows) is
  staged. `--python-module` adds one imported lazily inside the stdlib on a path the program
  takes (the integration tests find those). `--python-without` leaves a module out, traced
  as the image runs it (importing it fails); for a program that never speaks TLS itself,
  `_ssl` and `_hashlib` keep OpenSSL out of the process (http.server imports ssl only to
  offer HTTPS; hashlib falls back to its built-in hashes): about 5 MB less RSS. Bytecode is
  compiled with unchecked hashes (the root filesystem is read-only at run time; no mtimes
  inside).
- `--python-zip`: the stdlib's pure-Python modules as bytecode only, compressed in
  /usr/lib/pythonXY.zip (on the interpreter's default path, before the stdlib folder) instead
  of sources plus __pycache__: about a third of the bytes. Tracebacks in stdlib frames show no
  source lines; os.py stays as a file (the landmark that finds sys.prefix).
- `--user UID[:GID]`: /etc/passwd and /etc/group with root and that numeric user.
- `/tmp` (1777).

Never copied: documentation, man/info pages, locales (a path under them is an error).
Reproducible: every mtime is set to SOURCE_DATE_EPOCH (default 0) and the tree is written
in sorted order, so the same inputs give the same layer and the same digest.
"""

from __future__ import annotations

import argparse
import modulefinder
import os
import py_compile
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FORBIDDEN = ("/usr/share/doc", "/usr/share/man", "/usr/share/info", "/usr/share/locale",
             "/usr/lib/locale", "/usr/share/lintian", "/usr/share/bug")
LDD_PATH = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")
# Loaded by the interpreter itself before any program import, or by name at run time.
# (idna: the socket module encodes host names with it.)
ALWAYS = ("encodings", "encodings.idna", "encodings.latin_1", "encodings.ascii", "site", "os")
STDLIB = os.path.dirname(os.__file__)
imp_source = modulefinder._PY_SOURCE  # type: ignore[attr-defined]
TRACE = r"""
import importlib, os, runpy, sys
for name in filter(None, os.environ.get("STAGE_WITHOUT", "").split(",")):
    sys.modules[name] = None  # as in the image, where it is not staged: importing it fails
tolerant = sys.argv[1:2] == ["--tolerant"]
for entry in sys.argv[1 + tolerant:]:
    if entry.endswith(".py"):
        sys.path.insert(0, os.path.dirname(entry))
        runpy.run_path(entry, run_name="__stage__")
    elif tolerant:
        try:
            importlib.import_module(entry)
        except ImportError:
            pass
    else:
        importlib.import_module(entry)
for name, module in sorted(sys.modules.items()):
    path = getattr(module, "__file__", None)
    if path:
        print("STAGED-MODULE", name, path)
"""


class Stager:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.done: set[str] = set()
        self.elves: list[str] = []

    def add(self, path: str, *, tree: bool = True) -> None:
        """Copy `path` (following and recreating every symlink on the way) into the root."""
        path = os.path.normpath(path)
        if path in self.done:
            return
        if any(path == f or path.startswith(f + "/") for f in FORBIDDEN):
            raise SystemExit(f"stage: refusing {path} (documentation and locales stay out)")
        self.done.add(path)
        parts = path.strip("/").split("/")
        current = ""
        for index, part in enumerate(parts):
            current += "/" + part
            if os.path.islink(current):
                target = os.readlink(current)
                link = self.root / current.lstrip("/")
                link.parent.mkdir(parents=True, exist_ok=True)
                if not os.path.lexists(link):
                    os.symlink(target, link)
                resolved = os.path.normpath(os.path.join(os.path.dirname(current), target))
                rest = "/".join(parts[index + 1:])
                self.add(resolved + ("/" + rest if rest else ""), tree=tree)
                return
        if not os.path.lexists(path):
            raise SystemExit(f"stage: {path} does not exist in the build stage")
        dest = self.root / path.lstrip("/")
        info = os.lstat(path)
        if stat.S_ISDIR(info.st_mode):
            dest.mkdir(parents=True, exist_ok=True)
            dest.chmod(stat.S_IMODE(info.st_mode))
            if tree:
                for child in sorted(os.listdir(path)):
                    if child != "__pycache__":
                        self.add(os.path.join(path, child))
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest, follow_symlinks=False)
        with open(path, "rb") as handle:
            if handle.read(4) == b"\x7fELF":
                self.elves.append(path)

    def libraries(self) -> None:
        """Add what `ldd` names for every staged ELF file, until nothing new appears."""
        seen: set[str] = set()
        while pending := [e for e in self.elves if e not in seen]:
            for elf in pending:
                seen.add(elf)
                out = subprocess.run(["ldd", elf], capture_output=True, text=True, check=False)
                if "not found" in out.stdout:
                    raise SystemExit(f"stage: {elf} needs a library not installed:\n{out.stdout}")
                for line in out.stdout.splitlines():
                    if match := LDD_PATH.search(line):
                        self.add(match.group(1))

    def user(self, spec: str) -> None:
        """root and the numeric user, both with nologin as shell (staged, so that a daemon
        that checks the shell exists, like sshd, refuses them for the usual reason)."""
        self.add("/usr/sbin/nologin")
        uid, _, gid = spec.partition(":")
        gid = gid or uid
        etc = self.root / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "passwd").write_text(f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                                    f"sidecar:x:{uid}:{gid}:sidecar:/tmp:/usr/sbin/nologin\n")
        (etc / "group").write_text(f"root:x:0:\nsidecar:x:{gid}:\n")


class ProgramFinder(modulefinder.ModuleFinder):
    """Finds every import in the program's own code, also inside functions, but does not read
    the stdlib's code: which stdlib modules those pull in is found by importing them."""

    def load_module(self, fqname: str, fp: Any, pathname: str, file_info: Any) -> Any:
        if file_info[2] == imp_source and pathname.startswith(STDLIB + "/"):
            module = self.add_module(fqname)
            module.__file__ = pathname
            return module
        return super().load_module(fqname, fp, pathname, file_info)


def traced(names: list[str], env: dict[str, str]) -> set[str]:
    """Files of every module in sys.modules after importing `names` (modules or scripts)."""
    run = subprocess.run([sys.executable, "-c", TRACE, *names], capture_output=True,
                         text=True, check=False, env=env)
    if run.returncode != 0:
        raise SystemExit(f"stage: importing {' '.join(names)} failed:\n{run.stderr[-2000:]}")
    return {line.split(" ", 2)[2] for line in run.stdout.splitlines()
            if line.startswith("STAGED-MODULE ")}


def python_modules(entries: list[str], extra: list[str], search: list[str],
                   without: Sequence[str] = ()) -> set[str]:
    """Files of the stdlib modules the entries import, at import time and in their code,
    leaving out the modules in `without` (traced as the image will run: without them)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(search), "PYTHONDONTWRITEBYTECODE": "1",
           "STAGE_WITHOUT": ",".join(without)}
    files = traced(entries, env)
    named: set[str] = set()
    for entry in entries:
        script = entry.endswith(".py")
        finder = ProgramFinder(path=[os.path.dirname(entry)] * script + search + sys.path)
        if script:
            finder.run_script(entry)
        else:
            finder.import_hook(entry, fromlist=["*"])
        named |= {name for name, module in finder.modules.items()
                  if (module.__file__ or STDLIB + "/").startswith(STDLIB + "/")
                  and name not in ("__main__", "__stage__")}
    # Imported inside `try: ... except ImportError` (another OS's module) is fine to miss.
    files |= traced(["--tolerant", *sorted(named | set(ALWAYS) | set(extra))], env)
    chosen: set[str] = set()
    for path in files:
        real = os.path.realpath(path)
        if not (path.startswith(STDLIB + "/") or real.startswith(STDLIB + "/")):
            continue  # the program's own code: its Containerfile copies it
        chosen.add(path)
        folder = os.path.dirname(path)  # every package a module is in needs its __init__
        while folder.startswith(STDLIB + "/"):
            if os.path.exists(init := os.path.join(folder, "__init__.py")):
                chosen.add(init)
            folder = os.path.dirname(folder)
    chosen.add(os.path.join(STDLIB, "os.py"))  # the landmark that finds sys.prefix
    return chosen


def stdlib_zip(root: Path, sources: list[str]) -> None:
    """The pure-Python stdlib modules as unchecked-hash bytecode in /usr/lib/pythonXY.zip, in
    sorted order with fixed dates (the same inputs give the same bytes)."""
    name = f"python{sys.version_info.major}{sys.version_info.minor}.zip"
    target = root / os.path.dirname(STDLIB).lstrip("/") / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch, \
            zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for source in sorted(sources):
            compiled = os.path.join(scratch, "module.pyc")
            py_compile.compile(source, cfile=compiled, dfile=source, doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
            entry = zipfile.ZipInfo(os.path.relpath(source, STDLIB)[:-3] + ".pyc",
                                    (1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, Path(compiled).read_bytes())


def finish(root: Path, epoch: int) -> None:
    """Compile bytecode (hash-based), make /tmp, fix every mtime, bottom up in sorted order."""
    sources = sorted(str(p) for p in root.rglob("*.py") if not p.is_symlink())
    if sources:
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-s", str(root), "-p", "/",
                        "--invalidation-mode", "unchecked-hash", *sources], check=True)
    tmp = root / "tmp"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), (epoch, epoch), follow_symlinks=False)
    os.utime(root, (epoch, epoch))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stage", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="folder to stage into")
    parser.add_argument("--bin", action="append", default=[], help="executable to stage")
    parser.add_argument("--path", action="append", default=[], help="file or folder to stage")
    parser.add_argument("--python-entry", action="append", default=[],
                        help="module or script whose stdlib imports are staged")
    parser.add_argument("--python-module", action="append", default=[],
                        help="an extra stdlib module the program imports")
    parser.add_argument("--python-path", action="append", default=[],
                        help="folder the program's own modules are imported from")
    parser.add_argument("--python-without", action="append", default=[],
                        help="a stdlib module not to stage, which the program runs without "
                             "(e.g. _ssl and _hashlib: no OpenSSL when it never speaks TLS)")
    parser.add_argument("--python-zip", action="store_true",
                        help="the stdlib's pure-Python modules as bytecode in pythonXY.zip")
    parser.add_argument("--user", help="UID[:GID] to give /etc/passwd and /etc/group entries")
    args = parser.parse_args(argv)
    stager = Stager(args.root)
    args.root.mkdir(parents=True, exist_ok=True)
    for path in [*args.bin, *args.path]:
        stager.add(path)
    if args.python_entry:
        stager.add(os.path.realpath(sys.executable))
        stager.add("/usr/bin/python3")
        # The landmark of sys.exec_prefix, even when no extension module is staged.
        stager.add(os.path.join(STDLIB, "lib-dynload"), tree=False)
        modules = python_modules(args.python_entry, args.python_module, args.python_path,
                                 args.python_without)
        zipped = sorted(p for p in modules if args.python_zip and p.endswith(".py")
                        and os.path.realpath(p).startswith(STDLIB + "/")
                        and p != os.path.join(STDLIB, "os.py"))
        if zipped:
            stdlib_zip(args.root, zipped)
        for path in sorted(modules - set(zipped)):
            stager.add(path, tree=False)
    if args.user:
        stager.user(args.user)
    stager.libraries()
    finish(args.root, int(os.environ.get("SOURCE_DATE_EPOCH", "0")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
