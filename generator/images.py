"""Build the companion images in `images/` with the chosen container engine (the runtime seam)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from .errors import PatternError
from .runner import engines
from .runner.runtime import Build
from .shipped import DEFAULT_REGISTRY, shipped_folder
from .validate import ARCHIVE, SCHEMA_FOLDER

HASH_LABEL = "io.sidecar-patterns.source-hash"
COMMON = "_common"
COMMON_CONTEXT = "common"  # the named build context Containerfiles copy from
# An image that runs `pattern` itself (the KRM function) copies it from this named context:
# the generator package with the shipped catalogue and the Python distributions it imports,
# staged from this install (no network, no package index).
PROGRAM_CONTEXT = "program"
DISTRIBUTION = "sidecar-patterns"
# Requirements no command in such an image can use: `pattern new` (cookiecutter) writes into a
# catalogue, `pattern diagram` (graphviz) needs Graphviz's dot, `pattern ui` (flask) serves a
# local web console; none of that is in or for the image.
NOT_STAGED = frozenset({"cookiecutter", "graphviz", "flask"})
# kubernetes-validate's schema folders that nothing reads (validate reads the -strict ones).
_UNREAD = re.compile(r"^kubernetes_validate/kubernetes-json-schema/v[0-9.]+-local/")
# The schemas an image carries as one archive per version (generator.validate reads either
# form): a tenth of the folders' size, and a file per version instead of thousands.
SCHEMAS = re.compile(rf"^(kubernetes_validate/{SCHEMA_FOLDER}/[^/]+)/(.+)$")


@dataclass(frozen=True)
class ImageSource:
    name: str
    folder: Path
    version: str

    def reference(self, registry: str = DEFAULT_REGISTRY, tag: str | None = None) -> str:
        return f"{registry.rstrip('/')}/{self.name}:{tag or self.version}"


def default_root() -> Path:
    return shipped_folder("images")


def sources(root: Path | None = None) -> list[ImageSource]:
    folder = root or default_root()
    found = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if (path / "Containerfile").is_file() and (path / "VERSION").is_file():
            found.append(ImageSource(path.name, path, (path / "VERSION").read_text().strip()))
    return found


def common_context(root: Path | None = None) -> Path | None:
    """Code several images share, given to builds as the named context `common`."""
    folder = (root or default_root()) / COMMON
    return folder if folder.is_dir() else None


def source_hash(*folders: Path) -> str:
    """Content hash of build contexts, so an unchanged image is not rebuilt."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()
                           and "__pycache__" not in p.parts and not p.name.endswith(".pyc")):
            digest.update(f"{folder.name}/{path.relative_to(folder)}".encode() + b"\0"
                          + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _distributions() -> list[importlib.metadata.Distribution]:
    """The installed distributions `pattern` imports at run time: its requirements (not the
    test extra, not NOT_STAGED) and theirs, those installed here (an unmet environment marker
    leaves one uninstalled)."""
    found: dict[str, importlib.metadata.Distribution] = {}
    wanted = [DISTRIBUTION]
    while wanted:
        name = _normal(wanted.pop())
        if name in found:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        found[name] = dist
        for requirement in dist.requires or []:
            if re.search(r"\bextra\s*==", requirement):
                continue
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
            if match and _normal(match.group(1)) not in NOT_STAGED:
                wanted.append(match.group(1))
    return [d for n, d in sorted(found.items()) if n != _normal(DISTRIBUTION)]


def _program_files() -> Iterator[tuple[str, Path]]:
    """(path under site/, file) for the program: the generator package, the catalogue as an
    installed wheel carries it (generator/_data/patterns), and each distribution's files."""
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*")):
        relative = path.relative_to(package)
        if path.is_file() and relative.parts[0] != "_data" and "__pycache__" not in relative.parts:
            yield f"generator/{relative.as_posix()}", path
    patterns = shipped_folder("patterns")
    for path in sorted(patterns.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            yield f"generator/_data/patterns/{path.relative_to(patterns).as_posix()}", path
    for dist in _distributions():
        for file in dist.files or []:
            name = file.as_posix()
            if name.startswith("..") or "__pycache__" in name or _UNREAD.match(name):
                continue
            located = Path(str(dist.locate_file(file)))
            if located.is_file():
                yield name, located


def python_tag() -> str:
    """The Python the staged program was installed for (its compiled modules need the same)."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def program_hash() -> str:
    """What a rebuild of a program image depends on: the generator and catalogue contents,
    each distribution's name and version, and the Python."""
    digest = hashlib.sha256(python_tag().encode() + b"\0")
    for name, path in _program_files():
        if name.startswith("generator/"):
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    for dist in _distributions():
        digest.update(f"{dist.metadata['Name']}=={dist.version}\0".encode())
    return digest.hexdigest()[:16]


@contextmanager
def staged_program() -> Iterator[Path]:
    """A folder with `site/` (what goes on the image's PYTHONPATH) and `PYTHON` (X.Y), removed
    afterwards."""
    with tempfile.TemporaryDirectory(prefix="pattern-program-") as folder:
        root = Path(folder)
        schemas: dict[str, list[tuple[str, Path]]] = {}
        for name, path in _program_files():
            if match := SCHEMAS.match(name):
                schemas.setdefault(match.group(1), []).append((match.group(2), path))
                continue
            target = root / "site" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        for folder, files in schemas.items():
            write_archive(root / "site" / (folder + ARCHIVE), files)
        (root / "PYTHON").write_text(python_tag() + "\n")
        yield root


def write_archive(archive: Path, files: list[tuple[str, Path]]) -> None:
    """A zip of (name, file), the same bytes from the same files (sorted, no dates)."""
    import zipfile

    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w") as out:
        for name, path in sorted(files):
            entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            out.writestr(entry, path.read_bytes(), compresslevel=9)


def runs_program(source: ImageSource) -> bool:
    return f"--from={PROGRAM_CONTEXT}" in (source.folder / "Containerfile").read_text()


def build(names: list[str], *, registry: str | None, tag: str | None, push: bool,
          quiet: bool, say: Callable[[str], None], runtime: str | None = None) -> list[str]:
    """Build (or find up to date) the named images; returns the references produced."""
    available = {s.name: s for s in sources()}
    unknown = [n for n in names if n not in available]
    if unknown:
        raise PatternError(f"no image {unknown[0]!r} in {default_root()} "
                           f"(there are: {', '.join(available) or 'none'})")
    chosen = [available[n] for n in names] if names else list(available.values())
    rt = engines.choose(runtime)
    common = common_context()
    contexts = [common] if common else []
    produced = []
    for index, source in enumerate(chosen, start=1):
        canonical = source.reference()
        program = runs_program(source)
        wanted = source_hash(source.folder, *contexts)
        if program:
            wanted = hashlib.sha256(f"{wanted} {program_hash()}".encode()).hexdigest()[:16]
        if rt.image_label(canonical, HASH_LABEL) == wanted:
            say(f"[{index}/{len(chosen)}] {canonical}: up to date")
        else:
            say(f"[{index}/{len(chosen)}] {canonical}: building")
            with staged_program() if program else nullcontext() as staged:
                named = {COMMON_CONTEXT: common} if common else {}
                if staged is not None:
                    named[PROGRAM_CONTEXT] = staged
                result = rt.build_image(Build(
                    context=source.folder, tag=canonical,
                    build_args={"VERSION": source.version}, labels={HASH_LABEL: wanted},
                    contexts=named, quiet=quiet))
            if result.code != 0:
                tail = result.stderr.strip().splitlines()[-1:] if quiet else []
                raise PatternError(f"building {canonical} failed"
                                   + (f": {tail[0]}" if tail else " (see the output above)"))
        produced.append(canonical)
        if registry or tag:
            published = source.reference(registry or DEFAULT_REGISTRY, tag)
            rt.tag_image(canonical, published)
            produced.append(published)
            if push:
                say(f"pushing {published}")
                if not rt.push_image(published):
                    raise PatternError(f"pushing {published} failed (see the output above)")
    return produced
