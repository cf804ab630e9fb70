"""Parameter values: schema defaults, then the stack file, then `--set`; all checked at once."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from . import schema
from .catalogue import Pattern
from .errors import InvalidValues, UsageError


@dataclass(frozen=True)
class Assignment:
    """One `--set INSTANCE.KEY[.SUB]=VALUE`, still as text."""

    instance: str
    path: tuple[str, ...]
    text: str

    @property
    def where(self) -> str:
        return ".".join((self.instance, *self.path))


def parse_assignment(expression: str) -> Assignment:
    key, sep, text = expression.partition("=")
    parts = key.split(".")
    if not sep or len(parts) < 2 or not all(parts):
        raise UsageError(
            f"--set {expression!r}: expected PATTERN.KEY=VALUE (e.g. git-sync.period=30s)"
        )
    return Assignment(parts[0], tuple(parts[1:]), text)


def _coerce(text: str, prop: dict[str, Any], where: str) -> Any:
    """Turn `--set` text into the type the schema asks for (text stays text for strings)."""
    types = prop.get("type", "string")
    types = types if isinstance(types, list) else [types]
    if "string" in types:
        return text
    if text == "null" and "null" in types:
        return None
    if "boolean" in types and text in {"true", "false"}:
        return text == "true"
    if "integer" in types:
        try:
            return int(text, 10)
        except ValueError:
            pass
    if "number" in types:
        try:
            return float(text)
        except ValueError:
            pass
    if ("array" in types or "object" in types) and text[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidValues([f"{where}: {text!r} is not valid JSON ({error.msg})"]) from None
    if "array" in types:
        return [item for item in text.split(",") if item] if text else []
    return text  # the schema check reports the type mismatch with the path


def _schema_at(pattern: Pattern, path: tuple[str, ...]) -> dict[str, Any] | None:
    node: dict[str, Any] = pattern.parameters
    for part in path:
        props = node.get("properties", {})
        if part in props:
            node = props[part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
    return node


def resolve(
    pattern: Pattern, instance: str, given: dict[str, Any], assignments: list[Assignment]
) -> dict[str, Any]:
    """The final values for one sidecar; raises InvalidValues naming every bad one."""
    values = pattern.defaults()
    values.update(copy.deepcopy(given))
    problems: list[str] = []
    for item in assignments:
        prop = _schema_at(pattern, item.path)
        if prop is None:
            hint = schema.did_you_mean(item.path[-1], pattern.parameter_properties)
            refused = schema.refused_key(pattern.parameters, item.path[0]) \
                if len(item.path) == 1 else None
            problems.append(f"{item.where}: {refused or 'unknown parameter of ' + pattern.name}"
                            f"{hint}")
            continue
        try:
            value = _coerce(item.text, prop, item.where)
        except InvalidValues as error:
            problems += error.problems
            continue
        target = values
        for part in item.path[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                problems.append(f"{item.where}: {'.'.join(item.path[:-1])} is not an object")
                break
        else:
            target[item.path[-1]] = value
    problems += schema.validate(values, pattern.parameters, instance)
    if problems:
        raise InvalidValues(problems)
    return values


def check_value(pattern: Pattern, instance: str, key: str, text: str) -> tuple[Any, list[str]]:
    """One `--set INSTANCE.KEY=TEXT` on its own: the typed value and the problems `resolve`
    reports for it, in its words (`pattern ui` shows them beside the field)."""
    where = f"{instance}.{key}"
    prop = _schema_at(pattern, (key,))
    if prop is None:
        return text, [f"{where}: unknown parameter of {pattern.name}"
                      f"{schema.did_you_mean(key, pattern.parameter_properties)}"]
    try:
        value = _coerce(text, prop, where)
    except InvalidValues as error:
        return text, error.problems
    return value, schema.validate(value, prop, where)
