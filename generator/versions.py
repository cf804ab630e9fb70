"""Target Kubernetes versions: the default, and reading `X.Y` as every command accepts it."""

from __future__ import annotations

import re

from .errors import UsageError

DEFAULT_K8S_VERSION = "1.33"
_K8S_VERSION = re.compile(r"v?(\d+)\.(\d+)")


def parse_k8s_version(text: str) -> tuple[int, int]:
    match = _K8S_VERSION.fullmatch(text)
    if not match:
        raise UsageError(f"Kubernetes version {text!r} is not of the form X.Y (e.g. 1.33)")
    return int(match.group(1)), int(match.group(2))
