"""Render a pattern's Jinja templates into Kubernetes fragments.

YAML templates use a `finalize` hook that turns every `{{ expression }}` into a quoted YAML
scalar (see `yamlio.quote`), so user values can never add keys, items or documents: they land
verbatim at their field or the render fails. Text templates (configuration files) are rendered
as plain text and reach YAML only as one string value.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

from .catalogue import Pattern
from .errors import CatalogueError, InvalidValues, ManifestError
from .shipped import shipped_folder
from .yamlio import load_documents, quote


class _TemplateFailure(Exception):
    """Raised by `fail()` inside a template: the values are valid one by one, not together."""


def _fail(message: str) -> NoReturn:
    raise _TemplateFailure(message)


class YamlBlock(str):
    """Text made by a shared block (`lib.…`): its values were quoted inside, so it is placed
    as it is. Only the blocks make one; a user value is never one."""


@dataclass(frozen=True)
class RenderContext:
    """What every template of one sidecar instance sees (patterns/AUTHORING.md lists it)."""

    instance: str
    workload: str
    values: dict[str, Any]
    images: dict[str, str]
    volumes: dict[str, str]
    native: bool
    pattern_name: str
    pattern_version: str
    app: str = "app"
    app_mounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    selector: dict[str, str] = field(default_factory=dict)

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
            "app": self.app,
            "app_mounts": dict(self.app_mounts),
            "labels": dict(self.labels),
            "selector": dict(self.selector),
        }


class _Blocks:
    """`lib` in templates: the macros of _lib/sidecar.j2, whose output is placed as it is."""

    def __init__(self, module: Any) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        macro = getattr(self._module, name, None)
        if macro is None or name.startswith("_"):
            raise AttributeError(f"lib has no block {name!r}")

        def block(*args: Any, **kwargs: Any) -> YamlBlock:
            # Blank lines are dropped, so a macro may lay out its Jinja tags freely.
            lines = str(macro(*args, **kwargs)).splitlines()
            return YamlBlock("\n".join(line for line in lines if line.strip()))
        return block


def _finalize(value: Any) -> str:
    return value if isinstance(value, YamlBlock) else quote(value)


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


LIB_TEMPLATE = "_lib/sidecar.j2"


@cache
def _environments(root: Path) -> tuple[Any, Any]:
    """Jinja environments for one pattern's templates folder. `_lib/…` resolves in the
    pattern's catalogue, else in the shipped one."""
    # Imported here: jinja2 is the largest import, and `pattern list` never needs it.
    import jinja2

    search = [str(root), str(root.parent.parent), str(shipped_folder("patterns"))]
    loader = jinja2.FileSystemLoader(search)
    common: dict[str, Any] = {
        "loader": loader,
        "bytecode_cache": _bytecode_cache(jinja2),
        "undefined": jinja2.StrictUndefined,
        "keep_trailing_newline": True,
        "autoescape": False,
    }
    yaml_env = jinja2.Environment(finalize=_finalize, **common)
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
        if not text:
            variables["lib"] = _Blocks(env.get_template(LIB_TEMPLATE).make_module(variables))
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

