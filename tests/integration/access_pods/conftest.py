"""Registers access_support under a unique module name for the test modules here
(pytest runs with --import-mode=importlib, which puts no test folder on sys.path)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location(
    "access_pods_support", Path(__file__).with_name("access_support.py"))
assert _SPEC is not None and _SPEC.loader is not None
_support = importlib.util.module_from_spec(_SPEC)
sys.modules["access_pods_support"] = _support
_SPEC.loader.exec_module(_support)

access_images = _support.access_images
