"""The ssh and ftp pod tests: their images, built once per session."""

from __future__ import annotations

from access_support import access_images

__all__ = ["access_images"]
