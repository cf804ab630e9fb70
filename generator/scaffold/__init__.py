"""`pattern new`: scaffold a pattern (and its companion image) with cookiecutter.

The scaffold is complete as written: its README table and rendered example are generated at
once, so `pattern list` shows it and the catalogue tests pass before its author edits a line.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import schema
from ..catalogue import Catalogue, default_root, is_pattern_name, load_pattern, meta_schema
from ..errors import PatternError, UsageError
from ..shipped import DEFAULT_REGISTRY
from ..yamlio import write_atomically

_HERE = Path(__file__).resolve().parent
FIRST_VERSION = "0.1.0"


def _render(template: str, context: dict[str, Any], output: Path) -> Path:
    # cookiecutter's lower-level API: no prompts, no replay files in the user's home.
    from cookiecutter.generate import generate_context, generate_files  # type: ignore[import-untyped]

    full = generate_context(str(_HERE / template / "cookiecutter.json"), extra_context=context)
    return Path(generate_files(str(_HERE / template), full, str(output)))


def _check_name(name: str) -> None:
    if not is_pattern_name(name):
        raise UsageError(f"pattern name {name!r}: use lowercase words joined by '-' "
                         "(at most 40 characters), e.g. log-shipper")


def _check_image(image: str | None) -> None:
    """--image as the meta-schema will check it, before anything is written (cookiecutter
    would also read `{{ }}` in it as a template)."""
    if image is not None:
        problems = schema.validate(image, meta_schema()["$defs"]["image"], "--image")
        if problems:
            raise UsageError(problems[0])


def _image(name: str, image: str | None, images_root: Path) -> tuple[str, bool]:
    """The image reference, and whether a companion image folder should be scaffolded."""
    if image is not None:
        return image, False
    version_file = images_root / name / "VERSION"
    if version_file.is_file():
        return f"{DEFAULT_REGISTRY}/{name}:{version_file.read_text().strip()}", False
    return f"{DEFAULT_REGISTRY}/{name}:{FIRST_VERSION}", images_root.is_dir()


def _generated_files(catalogue: Catalogue, name: str) -> dict[Path, str]:
    """The new pattern's README table and rendered examples, and the catalogue's index."""
    from ..docs import index_file, pattern_files

    return {**pattern_files(catalogue.get(name), catalogue),
            **index_file(catalogue, catalogue.all())}


def new_pattern(name: str, *, image: str | None = None, root: Path | None = None) -> list[Path]:
    """Scaffold patterns/NAME (and images/NAME beside the catalogue); the files written.

    Everything is made in a hidden temporary folder first and moved in only once the pattern
    loads and its generated files are written, so a failure leaves nothing behind."""
    _check_name(name)
    _check_image(image)
    catalogue_root = root if root is not None else default_root()
    if catalogue_root.resolve().is_relative_to(_HERE.parent / "_data"):
        raise UsageError("the installed catalogue is not for editing: give --catalogue DIR "
                         "(a checkout's patterns/ folder, or your own)")
    if not catalogue_root.is_dir():
        raise PatternError(f"catalogue folder {catalogue_root} does not exist")
    folder = catalogue_root / name
    if folder.exists():
        raise PatternError(f"{folder}: already exists; pattern new never overwrites a pattern")
    images_root = catalogue_root.resolve().parent / "images"
    reference, with_image = _image(name, image, images_root)
    env_prefix = name.upper().replace("-", "_")
    try:
        with tempfile.TemporaryDirectory(prefix=".new-", dir=catalogue_root) as pattern_tmp, \
                _maybe_temporary(images_root if with_image else None) as image_tmp:
            return _scaffold(name, reference, env_prefix, catalogue_root, Path(pattern_tmp),
                             images_root, image_tmp)
    except OSError as error:
        raise PatternError(f"{catalogue_root}: cannot write the new pattern: "
                           f"{error.strerror or error}") from None


@contextlib.contextmanager
def _maybe_temporary(parent: Path | None) -> Iterator[Path | None]:
    if parent is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix=".new-", dir=parent) as made:
        yield Path(made)


def _scaffold(name: str, reference: str, env_prefix: str, catalogue_root: Path,
              pattern_tmp: Path, images_root: Path, image_tmp: Path | None) -> list[Path]:
    folder = catalogue_root / name
    staged = _render("pattern", {"name": name, "module": name.replace("-", "_"),
                                 "image": reference, "env_prefix": env_prefix}, pattern_tmp)
    load_pattern(staged)  # refuses (CatalogueError) before anything is moved in
    image_folder = None
    if image_tmp is not None:
        image_folder = _render("image", {"name": name, "env_prefix": env_prefix,
                                         "version": FIRST_VERSION}, image_tmp)
    staged.rename(folder)
    try:
        files = _generated_files(Catalogue(catalogue_root), name)
        for path, text in files.items():
            if not path.is_relative_to(folder):
                continue
            path.write_text(text, encoding="utf-8")
    except (PatternError, OSError) as error:
        folder.rename(staged)  # back into the temporary folder, which goes away
        raise PatternError(f"pattern new {name}: nothing was written: {error}") from None
    written = []
    if image_folder is not None:
        image_folder.rename(images_root / name)
        written += sorted(p for p in (images_root / name).rglob("*") if p.is_file())
    for path, text in files.items():
        if not path.is_relative_to(folder):
            write_atomically(path, text)
    written += sorted(p for p in folder.rglob("*") if p.is_file())
    return written + [p for p in files if not p.is_relative_to(folder)]
