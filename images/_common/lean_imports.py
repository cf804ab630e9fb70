"""Keep a Python sidecar's idle memory to what it runs (issue 21: idle RSS <= 20 MB).

http.client, and so http.server and urllib.request, imports ssl when it is imported, for an
HTTPS class a plain-HTTP sidecar never uses; ssl maps OpenSSL (libssl and libcrypto, 1-2 MB
resident on top of the interpreter's 8 MB). A process that has decided, from its settings,
that it speaks plain HTTP only calls `without_tls()` before its first import of those modules:
they then take their no-TLS path (no HTTPSConnection, no https handler), as on an interpreter
built without ssl. A process that needs TLS simply does not call it. A program whose imports
come before its flags are parsed asks `https_named` first, at the top of its entry module.
Stdlib only."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

TLS_MODULES = ("ssl", "_ssl")


def without_tls() -> bool:
    """Make `import ssl` fail in this process from now on; False when it is imported already
    (then nothing changes)."""
    if any(sys.modules.get(name) is not None for name in TLS_MODULES):
        return False
    for name in TLS_MODULES:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    return True


def https_named(argv: Sequence[str], prefix: str) -> bool:
    """Whether an https:// URL is in the command line or in a PREFIX* environment variable: a
    look before the flags are parsed (a false yes only costs the memory of ssl)."""
    values = [*argv, *(value for key, value in os.environ.items() if key.startswith(prefix))]
    return any("https://" in value.lower() for value in values)
