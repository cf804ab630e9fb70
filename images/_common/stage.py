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
  takes (the integration tests find those; argparse's textwrap and gettext's locale, for
  --help, come by themselves). `--python-without` leaves a module out, traced
  as the image runs it (importing it fails); for a program that never speaks TLS itself,
  `_ssl` and `_hashlib` keep OpenSSL out of the process (http.server imports ssl only to
  offer HTTPS; hashlib falls back to its built-in hashes): about 5 MB less RSS. Bytecode is
  compiled with unchecked hashes (the root filesystem is read-only at run time; no mtimes
  inside).
  The interpreter comes with libgcc_s.so.1, which glibc loads by dlopen (so ldd never names
  it) when a thread ends by pthread_exit, as Python's daemon threads do at exit.
- `--python-zip`: the stdlib's pure-Python modules as bytecode only, compressed in
  /usr/lib/pythonXY.zip (on the interpreter's default path, before the stdlib folder) instead
  of sources plus __pycache__: about a third of the bytes. Tracebacks in stdlib frames show no
  source lines; os.py stays as a file (the landmark that finds sys.prefix).
- `--python-site FOLDER` (repeatable): installed packages the program imports (its own
  package and its third-party distributions, e.g. a copied site-packages), searched like
  `--python-path`. Only what is imported from it is staged, at the same path: of the
  program's own package (an entry's top-level package), the modules imported at import time
  or named by its code, each package with its data files (the non-code files of its folder
  and of its non-package subfolders); each third-party package those import (at once or
  named in the program's code, which is imported to see what it pulls in) whole, as its code
  imports its own modules lazily; tests and docs folders never. Nothing else: no pip,
  setuptools, dist-info, or a distribution nothing imports.
- `--bytecode-only`: each staged module is its compiled `.pyc` alone, in place of the source
  (Python imports it sourceless; smaller than source and bytecode both, and no compile at
  start as source alone would need). Only for a program that never reads its own source
  (inspect.getsource); tracebacks then show no source lines.
- `--user UID[:GID]`: /etc/passwd and /etc/group with root and that numeric user (`--nobody`:
  and nobody, 65534, for a runner that names the user, as kustomize runs functions).
- `/tmp` (1777).

Never copied: documentation, man/info pages, locales (a path under them is an error).
Reproducible: every mtime is set to SOURCE_DATE_EPOCH (default 0) and the tree is written
in sorted order, so the same inputs give the same layer and the same digest.
"""

from __future__ import annotations

import argparse
import importlib.machinery
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
# Imported inside a stdlib function that no import runs, on a path every program using the
# first takes: argparse formats --help with textwrap; gettext (argparse's messages) looks up
# the language with locale.
IMPLIED = {"argparse": ("textwrap",), "gettext": ("locale",)}
STDLIB = os.path.dirname(os.__file__)
# A package's files that are not its data (code is staged by import, the rest never runs).
NOT_DATA = (".py", ".pyc", ".pyi", ".so", ".c", ".h", ".pyx", ".pxd", "py.typed")
NOT_DATA_FOLDERS = ("__pycache__", "tests", "test", "docs", "doc")
NOT_CODE = (".pyc", ".pyi", ".c", ".h", ".pyx", ".pxd", "py.typed")
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

    def user(self, spec: str, nobody: bool = False) -> None:
        """root and the numeric user (and with `nobody` Debian's nobody, 65534), all with
        nologin as shell (staged, so that a daemon that checks the shell exists, like sshd,
        refuses them for the usual reason)."""
        self.add("/usr/sbin/nologin")
        uid, _, gid = spec.partition(":")
        gid = gid or uid
        etc = self.root / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        users = ["root:x:0:0:root:/root:/usr/sbin/nologin\n",
                 f"sidecar:x:{uid}:{gid}:sidecar:/tmp:/usr/sbin/nologin\n"]
        groups = ["root:x:0:\n", f"sidecar:x:{gid}:\n"]
        if nobody:
            users.append("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
            groups.append("nogroup:x:65534:\n")
        (etc / "passwd").write_text("".join(users))
        (etc / "group").write_text("".join(groups))


def under(path: str, folders: Sequence[str]) -> bool:
    return any(path.startswith(folder.rstrip("/") + "/") for folder in folders)


class ProgramFinder(modulefinder.ModuleFinder):
    """Finds every import in the program's own code, also inside functions, but does not read
    the code of the stdlib or of the third-party packages in `sites` (every package there but
    the program's own `packages`): which modules those pull in is found by importing them."""

    def __init__(self, path: list[str], sites: Sequence[str], packages: set[str]) -> None:
        super().__init__(path=path)
        self.sites, self.packages = sites, packages

    def load_module(self, fqname: str, fp: Any, pathname: str, file_info: Any) -> Any:
        library = (pathname or "").startswith(STDLIB + "/") or (
            under(pathname or "", self.sites) and fqname.partition(".")[0] not in self.packages)
        if file_info[2] == imp_source and library:
            module = self.add_module(fqname)
            module.__file__ = pathname
            return module
        return super().load_module(fqname, fp, pathname, file_info)

    def import_module(self, partname: str, fqname: str, parent: Any) -> Any:
        try:
            return super().import_module(partname, fqname, parent)
        except AttributeError:  # a namespace package (ruamel): modulefinder cannot find one
            spec = importlib.machinery.PathFinder.find_spec(
                partname, parent.__path__ if parent else self.path)
            if spec is None or spec.submodule_search_locations is None:
                raise
            module = self.add_module(fqname)
            module.__path__ = list(spec.submodule_search_locations)
            return module


def traced(names: list[str], env: dict[str, str]) -> set[str]:
    """Files of every module in sys.modules after importing `names` (modules or scripts)."""
    run = subprocess.run([sys.executable, "-P", "-c", TRACE, *names], capture_output=True,
                         text=True, check=False, env=env)
    if run.returncode != 0:
        raise SystemExit(f"stage: importing {' '.join(names)} failed:\n{run.stderr[-2000:]}")
    return {line.split(" ", 2)[2] for line in run.stdout.splitlines()
            if line.startswith("STAGED-MODULE ")}


def package_data(folder: str) -> list[str]:
    """The data files of the package in `folder`: its non-code files, and those of its
    subfolders that are no package of their own (a subpackage comes only if imported)."""
    found = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            if name not in NOT_DATA_FOLDERS and not os.path.exists(path + "/__init__.py"):
                found += package_data(path)
        elif not name.endswith(NOT_DATA):
            found.append(path)
    return found


def package_files(folder: str) -> list[str]:
    """Every file of the installed package in `folder` that can run or be read (not its
    tests, docs, type stubs or C sources)."""
    found = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            if name not in NOT_DATA_FOLDERS:
                found += package_files(path)
        elif not name.endswith(NOT_CODE):
            found.append(path)
    return found


def python_modules(entries: list[str], extra: list[str], search: list[str],
                   without: Sequence[str] = (), sites: Sequence[str] = ()) -> set[str]:
    """Files of the stdlib modules the entries import, at import time and in their code,
    leaving out the modules in `without` (traced as the image will run: without them), and
    of what they import from `sites` (with the packages' data files)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*search, *sites]),
           "PYTHONDONTWRITEBYTECODE": "1", "STAGE_WITHOUT": ",".join(without)}
    files = traced(entries, env)
    named: set[str] = set()
    own = {entry.partition(".")[0] for entry in entries if not entry.endswith(".py")}
    for entry in entries:
        script = entry.endswith(".py")
        finder = ProgramFinder([*[os.path.dirname(entry)] * script, *search, *sites, *sys.path],
                               sites, own)
        if script:
            finder.run_script(entry)
        else:
            finder.import_hook(entry, fromlist=["*"])
        for name, module in finder.modules.items():
            path = module.__file__ or STDLIB + "/"
            if (path.startswith(STDLIB + "/") or under(path, sites)) \
                    and name not in ("__main__", "__stage__"):
                named.add(name)
    # Imported inside `try: ... except ImportError` (another OS's module) is fine to miss.
    files |= traced(["--tolerant", *sorted(named | set(ALWAYS) | set(extra))], env)
    implied = sorted({module for name, modules in IMPLIED.items()
                      if os.path.join(STDLIB, f"{name}.py") in files for module in modules})
    if implied:
        files |= traced(["--tolerant", *implied], env)
    chosen: set[str] = set()
    for path in files:
        real = os.path.realpath(path)
        if under(path, sites):
            top = next(s.rstrip("/") for s in sites if under(path, [s]))
            package = os.path.join(top, os.path.relpath(path, top).split(os.sep)[0])
            if os.path.basename(package).partition(".")[0] not in own:
                # A third-party package is staged whole: its code imports lazily on paths
                # the program takes (click's decorators), which no import here runs.
                chosen.update(package_files(package) if os.path.isdir(package) else [path])
                continue
            chosen.add(path)
            folder = os.path.dirname(path)
            while folder.startswith(top + "/"):  # each package it is in, with its data
                if os.path.exists(init := os.path.join(folder, "__init__.py")):
                    chosen.add(init)
                    chosen.update(package_data(folder))
                folder = os.path.dirname(folder)
            continue
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


def finish(root: Path, epoch: int, bytecode_only: bool = False) -> None:
    """Compile bytecode (hash-based; with `bytecode_only` beside the source, which goes), make
    /tmp, fix every mtime, bottom up in sorted order."""
    sources = sorted(str(p) for p in root.rglob("*.py") if not p.is_symlink())
    if bytecode_only:  # a script run by path (not imported) stays source
        sources = [s for s in sources if not os.access(s, os.X_OK)]
    if sources:
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-s", str(root), "-p", "/",
                        *["-b"] * bytecode_only, "--invalidation-mode", "unchecked-hash",
                        *sources], check=True)
    if bytecode_only:
        for source in sources:
            os.unlink(source)
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
    parser.add_argument("--python-site", action="append", default=[],
                        help="folder of installed packages the program imports (staged: only "
                             "what it imports, with its data)")
    parser.add_argument("--bytecode-only", action="store_true",
                        help="stage each module's bytecode in place of its source")
    parser.add_argument("--python-without", action="append", default=[],
                        help="a stdlib module not to stage, which the program runs without "
                             "(e.g. _ssl and _hashlib: no OpenSSL when it never speaks TLS)")
    parser.add_argument("--python-zip", action="store_true",
                        help="the stdlib's pure-Python modules as bytecode in pythonXY.zip")
    parser.add_argument("--user", help="UID[:GID] to give /etc/passwd and /etc/group entries")
    parser.add_argument("--nobody", action="store_true",
                        help="with --user, also the user nobody (65534), for a runner that "
                             "names it (kustomize runs functions with --user nobody)")
    args = parser.parse_args(argv)
    stager = Stager(args.root)
    args.root.mkdir(parents=True, exist_ok=True)
    for path in [*args.bin, *args.path]:
        stager.add(path)
    if args.python_entry:
        stager.add(os.path.realpath(sys.executable))
        stager.add("/usr/bin/python3")
        # glibc loads libgcc_s with dlopen (ldd never names it) to unwind a thread that ends
        # by pthread_exit, as Python's daemon threads do when it exits.
        for gcc_s in sorted(Path("/usr/lib").glob("*/libgcc_s.so.1")):
            stager.add(str(gcc_s))
        # The landmark of sys.exec_prefix, even when no extension module is staged.
        stager.add(os.path.join(STDLIB, "lib-dynload"), tree=False)
        modules = python_modules(args.python_entry, args.python_module, args.python_path,
                                 args.python_without, args.python_site)
        zipped = sorted(p for p in modules if args.python_zip and p.endswith(".py")
                        and os.path.realpath(p).startswith(STDLIB + "/")
                        and p != os.path.join(STDLIB, "os.py"))
        if zipped:
            stdlib_zip(args.root, zipped)
        for path in sorted(modules - set(zipped)):
            stager.add(path, tree=False)
    if args.user:
        stager.user(args.user, args.nobody)
    stager.libraries()
    finish(args.root, int(os.environ.get("SOURCE_DATE_EPOCH", "0")), args.bytecode_only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
