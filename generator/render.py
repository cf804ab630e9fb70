"""Render a pattern's Jinja templates into Kubernetes fragments.

YAML templates use a `finalize` hook that turns every `{{ expression }}` into a quoted YAML
scalar (see `yamlio.quote`), so user values can never add keys, items or documents: they land
verbatim at their field or the render fails. Text templates (configuration files) are rendered
as plain text and reach YAML only as one string value.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

from .catalogue import Pattern
from .errors import CatalogueError, InvalidValues, ManifestError
from .yamlio import load_documents, quote


class _TemplateFailure(Exception):
    """Raised by `fail()` inside a template: the values are valid one by one, not together."""


def _fail(message: str) -> NoReturn:
    raise _TemplateFailure(message)


@dataclass(frozen=True)
class RenderContext:
    """What every template of one sidecar instance sees."""

    instance: str
    workload: str
    values: dict[str, Any]
    images: dict[str, str]
    volumes: dict[str, str]
    native: bool
    pattern_name: str
    pattern_version: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.instance,
            "workload": self.workload,
            "prefix": f"{self.workload}-{self.instance}",
            "values": self.values,
            "images": self.images,
            "volumes": self.volumes,
            "native": self.native,
            "pattern": {"name": self.pattern_name, "version": self.pattern_version},
        }


def _bytecode_cache(jinja2: Any) -> Any:
    """Compiled templates kept between runs (a cold `pattern generate` saves ~10 ms);
    SIDECAR_PATTERNS_NO_CACHE=1 or an unwritable cache folder turns it off."""
    if os.environ.get("SIDECAR_PATTERNS_NO_CACHE"):
        return None
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = base / "sidecar-patterns" / "jinja"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(str(folder))


@cache
def _environments(root: Path) -> tuple[Any, Any]:
    # Imported here: jinja2 is the largest import, and `pattern list` never needs it.
    import jinja2

    loader = jinja2.FileSystemLoader(str(root))
    common: dict[str, Any] = {
        "loader": loader,
        "bytecode_cache": _bytecode_cache(jinja2),
        "undefined": jinja2.StrictUndefined,
        "keep_trailing_newline": True,
        "autoescape": False,
    }
    yaml_env = jinja2.Environment(finalize=quote, **common)
    text_env = jinja2.Environment(**common)
    for env in (yaml_env, text_env):
        env.globals["fail"] = _fail
        env.filters["shquote"] = shlex.quote
    return yaml_env, text_env


def _render(pattern: Pattern, template: str, context: RenderContext, *, text: bool) -> str:
    import jinja2

    yaml_env, text_env = _environments(pattern.root / "templates")
    env = text_env if text else yaml_env
    variables = context.as_dict()
    variables["file"] = lambda name: _render(pattern, name, context, text=True)
    try:
        rendered: str = env.get_template(template).render(variables)
        return rendered
    except _TemplateFailure as failure:
        raise InvalidValues([f"{context.instance}: {failure}"]) from None
    except ValueError as error:  # from quote(): text YAML cannot carry
        raise InvalidValues([f"{context.instance}: a value {error}"]) from None
    except jinja2.TemplateError as error:
        raise CatalogueError(f"{pattern.root}/templates/{template}: {error}") from None


def render_yaml(pattern: Pattern, template: str, context: RenderContext) -> Any:
    """Render a YAML template and parse it; a broken template is a catalogue error."""
    text = _render(pattern, template, context, text=False)
    try:
        docs = load_documents(text, f"{pattern.name}/templates/{template}")
    except ManifestError as error:
        raise CatalogueError(f"pattern {pattern.name} rendered invalid YAML: {error}") from None
    if len(docs) != 1:
        raise CatalogueError(f"{pattern.name}/templates/{template}: must render one YAML node")
    return docs[0]

