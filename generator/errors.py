"""One exception family for everything a user can get wrong.

The CLI catches `PatternError` only: it prints the message as one line and exits with
`exit_code`. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class PatternError(Exception):
    """A mistake in what the user gave us (input, values, files, environment)."""

    exit_code = 1


class UsageError(PatternError):
    """The command line itself is wrong (conflicting or missing options)."""

    exit_code = 2


class CatalogueError(PatternError):
    """A pattern folder is missing, malformed, or not in the catalogue."""


class InvalidValues(PatternError):
    """One or more parameter values are invalid; all of them are reported at once."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} invalid values: " if len(problems) > 1 else ""
        super().__init__(count + "; ".join(problems))


class ComposeError(PatternError):
    """The pod cannot be built as asked (a port, name or mount clash, an impossible placement)."""


class ManifestError(PatternError):
    """A manifest given to us is unreadable or is not what the command needs."""


class ValidationFailed(PatternError):
    """A manifest breaks the Kubernetes schema or the pod rules."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s): " + "; ".join(problems))


class RuntimeUnavailable(PatternError):
    """The container runtime is missing or cannot run containers on this machine."""
