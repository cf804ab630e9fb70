"""`pattern new`: scaffold a pattern (and its companion image) with cookiecutter.

The scaffold is complete as written: its README table and rendered example are generated at
once, so `pattern list` shows it and the catalogue tests pass before its author edits a line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..catalogue import Catalogue, default_root
from ..errors import PatternError, UsageError
from ..shipped import DEFAULT_REGISTRY

_HERE = Path(__file__).resolve().parent
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
FIRST_VERSION = "0.1.0"


def _render(template: str, context: dict[str, Any], output: Path) -> Path:
    # cookiecutter's lower-level API: no prompts, no replay files in the user's home.
    from cookiecutter.generate import generate_context, generate_files  # type: ignore[import-untyped]

    full = generate_context(str(_HERE / template / "cookiecutter.json"), extra_context=context)
    return Path(generate_files(str(_HERE / template), full, str(output)))


def _check_name(name: str) -> None:
    if not _NAME.match(name) or len(name) > 40:
        raise UsageError(f"pattern name {name!r}: use lowercase words joined by '-' "
                         "(at most 40 characters), e.g. log-shipper")


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
    """Scaffold patterns/NAME (and images/NAME beside the catalogue); the files written."""
    _check_name(name)
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
    written = []
    if with_image:
        image_folder = _render("image", {"name": name, "env_prefix": env_prefix,
                                         "version": FIRST_VERSION}, images_root)
        written += sorted(p for p in image_folder.rglob("*") if p.is_file())
    _render("pattern", {"name": name, "module": name.replace("-", "_"), "image": reference,
                        "env_prefix": env_prefix}, catalogue_root)
    try:
        files = _generated_files(Catalogue(catalogue_root), name)
    except PatternError as error:
        raise PatternError(f"{folder}: scaffolded, but {error}") from None
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    written += sorted(p for p in folder.rglob("*") if p.is_file())
    return written + [p for p in files if not p.is_relative_to(folder)]
