"""Where the shipped catalogue and image sources live, and the registry their images use.

An installed wheel carries them under `generator/_data/`; a checkout has them beside the
package. Every module that needs one asks here.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_REGISTRY = "ghcr.io/sidecar-patterns"
_PACKAGE = Path(__file__).resolve().parent


def shipped_folder(name: str) -> Path:
    """`patterns` or `images`: the installed copy if there is one, else the checkout's."""
    installed = _PACKAGE / "_data" / name
    return installed if installed.is_dir() else _PACKAGE.parent / name


def package_file(*parts: str) -> Path:
    """A file that ships inside the package itself (schemas, scaffolds)."""
    return _PACKAGE.joinpath(*parts)
