"""Build the companion images in `images/` with the chosen container engine (the runtime seam)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import PatternError
from .runner import engines
from .runner.runtime import Build
from .shipped import DEFAULT_REGISTRY, shipped_folder

HASH_LABEL = "io.sidecar-patterns.source-hash"
COMMON = "_common"
COMMON_CONTEXT = "common"  # the named build context Containerfiles copy from


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
        wanted = source_hash(source.folder, *contexts)
        if rt.image_label(canonical, HASH_LABEL) == wanted:
            say(f"[{index}/{len(chosen)}] {canonical}: up to date")
        else:
            say(f"[{index}/{len(chosen)}] {canonical}: building")
            result = rt.build_image(Build(
                context=source.folder, tag=canonical, build_args={"VERSION": source.version},
                labels={HASH_LABEL: wanted}, contexts={COMMON_CONTEXT: common} if common else {},
                quiet=quiet))
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
