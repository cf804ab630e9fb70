"""A small, strict JSON Schema validator for the subset the catalogue uses.

Pattern parameters and pattern metadata are described with this subset (the meta-schema
forbids anything else), so validation needs no heavy dependency on the hot path and every
message is written for a person: `git-sync.period: '5 minutes' is not a duration`.
The catalogue tests cross-check it against the `jsonschema` library.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

Schema = dict[str, Any]

# Every format is checked against the whole value (`fullmatch`, never `match` with `$`, which
# also matches before a trailing newline), and none admits a control character.
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?")
_SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?")
_SCP_LIKE = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+")  # git@host:org/repo


def has_control(text: str) -> bool:
    """A C0/C1 control character, DEL, or a line/paragraph separator anywhere in `text`."""
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029" for c in text)


def duration_seconds(text: str) -> float:
    """Seconds in a Go-style duration such as `10s`, `1m30s`, `500ms`."""
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


def _is_uri(text: str) -> bool:
    # urlsplit silently drops tabs and newlines, so they are refused before it sees them.
    if has_control(text) or " " in text:
        return False
    parts = urlsplit(text)
    return bool(parts.scheme) and bool(parts.netloc or parts.path)


def _is_git_url(text: str) -> bool:
    if has_control(text) or any(c.isspace() for c in text):
        return False
    if _SCP_LIKE.fullmatch(text):
        return True
    parts = urlsplit(text)
    return parts.scheme in {"https", "http", "ssh", "git", "file"} \
        and bool(parts.netloc or parts.scheme == "file")


def _whole(regex: re.Pattern[str]) -> Callable[[str], bool]:
    return lambda text: regex.fullmatch(text) is not None


# PCRE spellings with an exact Python equivalent; the rest of the syntax the engines' regexes
# use (classes, quantifiers, lookarounds, \b \d \s \w, (?i)) reads the same in both.
_PCRE_TO_PYTHON = ((re.compile(r"\(\?<([A-Za-z_]\w*)>"), r"(?P<\1>"),
                   (re.compile(r"\(\?'([A-Za-z_]\w*)'"), r"(?P<\1>"),
                   (re.compile(r"\\k<([A-Za-z_]\w*)>"), r"(?P=\1)"))


def pcre_as_python(pattern: str) -> str:
    """A PCRE (syslog-ng's dialect) in Python's spelling, to compile it as a proxy."""
    for regex, replacement in _PCRE_TO_PYTHON:
        pattern = regex.sub(replacement, pattern)
    return pattern


def compile_error(pattern: str, *, dialect: str = "python") -> str | None:
    r"""Why `pattern` does not compile (None when it does). `pcre` also refuses what Python
    would read differently from PCRE: `\Z` (end or before a final newline in PCRE) and
    `(?P>name)`/`(?R)` recursion, `\K`, `\Q...\E`, `\p{..}`, `(*VERB)`, which Python lacks."""
    if dialect == "pcre":
        pcre_only = re.search(r"\\[KQEpPhHvVRXz]|\(\?(?:R|P>|\d|&)|\(\*[A-Z]", pattern)
        if pcre_only:
            return f"{pcre_only.group(0)!r} is PCRE-only syntax this check cannot verify"
        pattern = pcre_as_python(pattern)
    try:
        with warnings.catch_warnings():  # FutureWarning on `[[`, valid (a POSIX class) in PCRE
            warnings.simplefilter("ignore")
            re.compile(pattern)
    except re.error as error:
        return str(error)
    except RecursionError:
        return "nested too deeply"
    return None


def anchored_problem(pattern: str) -> str | None:
    r"""Why a schema `pattern` would not check the whole value: it must start with `\A`, end
    with `\Z`, hold no `$` outside a class (`$` also matches before a trailing newline) and no
    `|` outside a group (`\Aa|b\Z` is `\Aa` or `b\Z`)."""
    if not pattern.startswith("\\A"):
        return "must start with \\A"
    index, last, class_from, depth = 0, "", -1, 0  # class_from: where a class's members start
    while index < len(pattern):
        char = pattern[index]
        token = pattern[index:index + 2] if char == "\\" else char
        index += len(token)
        if class_from >= 0:
            if token == "]" and index - 1 > class_from:
                class_from = -1
            continue
        if token == "[":
            class_from = index + (pattern[index:index + 1] == "^")
        elif token == "$":
            return "must not use $ (it matches before a trailing newline): use \\Z"
        elif token in "()":
            depth += 1 if token == "(" else -1
        elif token == "|" and depth == 0:
            return "must group its alternatives, \\A(?:a|b)\\Z"
        last = token
    return None if last == "\\Z" else "must end with \\Z"


_FORMATS: dict[str, tuple[Callable[[str], bool], str]] = {
    "duration": (_whole(_DURATION), "a duration (e.g. 10s, 1m30s, 500ms)"),
    "absolute-path": (
        lambda s: s.startswith("/") and not has_control(s) and "/../" not in s + "/",
        "an absolute path",
    ),
    "uri": (_is_uri, "a URI"),
    "git-url": (_is_git_url, "a git URL (https://, ssh://, git://, file:// or user@host:path)"),
    "dns-label": (
        lambda s: len(s) <= 63 and _whole(_DNS_LABEL)(s),
        "a DNS label (lowercase letters, digits and '-', at most 63)",
    ),
    "quantity": (_whole(_QUANTITY), "a Kubernetes quantity (e.g. 100m, 64Mi)"),
    "semver": (_whole(_SEMVER), "a semantic version (e.g. 1.2.3)"),
    "regex": (lambda s: compile_error(s) is None, "a valid regular expression"),
    "pcre": (lambda s: not has_control(s) and compile_error(s, dialect="pcre") is None,
             "a valid PCRE on one line"),
    "anchored-regex": (lambda s: compile_error(s) is None and anchored_problem(s) is None,
                       "a regular expression anchored to the whole value"),
}


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _type_ok(value: Any, expected: str) -> bool:
    if expected == "string":
        return isinstance(value, str)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "array":
        return isinstance(value, list)
    if expected == "object":
        return isinstance(value, dict)
    if expected == "null":
        return value is None
    raise ValueError(f"unknown schema type {expected!r}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def resolve(schema: Schema, root: Schema) -> Schema:
    """`schema` with its `$ref`s followed (against `root`)."""
    # References are resolved against `root`, whatever document they name: the Kubernetes
    # schemas point into one definitions file, which the caller passes as the root.
    while "$ref" in schema:
        fragment = schema["$ref"].partition("#")[2]
        target: Any = root
        for part in filter(None, fragment.split("/")):
            target = target[part]
        schema = target
    return schema


def validate(value: Any, schema: Schema, path: str, root: Schema | None = None) -> list[str]:
    """Every problem of `value` against `schema`, each prefixed with its dotted `path`."""
    root = schema if root is None else root
    schema = resolve(schema, root)
    if "allOf" in schema:
        return [p for part in schema["allOf"] for p in validate(value, part, path, root)]
    if "oneOf" in schema:
        # Checked as anyOf: every schema here (ours and Kubernetes' int-or-string) uses oneOf
        # for alternatives that cannot both match, except `null`, which both accept.
        if any(not validate(value, option, path, root) for option in schema["oneOf"]):
            return []
        first = validate(value, schema["oneOf"][0], path, root)
        hint = f" ({first[0].split(': ', 1)[-1]})" if first else ""
        return [f"{path}: {_show(value)} matches none of the allowed forms{hint}"]
    expected = schema.get("type")
    if expected is not None:
        types = expected if isinstance(expected, list) else [expected]
        if not any(_type_ok(value, t) for t in types):
            return [f"{path}: {_show(value)} is not of type {' or '.join(types)}"]
    problems: list[str] = []
    if "const" in schema and value != schema["const"]:
        problems.append(f"{path}: must be {_show(schema['const'])}")
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(str(v) for v in schema["enum"])
        problems.append(f"{path}: {_show(value)} is not one of: {allowed}")
    if isinstance(value, str):
        problems += _check_string(value, schema, path)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        problems += _check_number(value, schema, path)
    elif isinstance(value, list):
        problems += _check_array(value, schema, path, root)
    elif isinstance(value, dict):
        problems += _check_object(value, schema, path, root)
    return problems


def _check_string(value: str, schema: Schema, path: str) -> list[str]:
    problems = []
    if "minLength" in schema and len(value) < schema["minLength"]:
        problems.append(f"{path}: must not be shorter than {schema['minLength']} characters")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        problems.append(f"{path}: must not be longer than {schema['maxLength']} characters")
    fmt = schema.get("format")
    if fmt in _FORMATS:  # formats we do not know (int32, byte, date-time) are annotations
        check, noun = _FORMATS[fmt]
        if not check(value):
            return [*problems, f"{path}: {_show(value)} is not {noun}{_why(fmt, value)}"]
        if fmt == "duration":
            problems += _check_duration(value, schema, path)
    if "pattern" in schema and not _regex(schema["pattern"]).search(value):
        hint = schema.get("x-pattern-hint", f"must match {schema['pattern']}")
        problems.append(f"{path}: {_show(value)} {hint}")
    return problems


def _why(fmt: str, value: str) -> str:
    if fmt not in ("regex", "pcre", "anchored-regex"):
        return ""
    reason = compile_error(value, dialect="pcre" if fmt == "pcre" else "python")
    if reason is None:
        reason = anchored_problem(value) if fmt == "anchored-regex" else "a control character"
    return f" ({reason})"


def _check_duration(value: str, schema: Schema, path: str) -> list[str]:
    seconds = duration_seconds(value)
    low, high = schema.get("x-min-duration"), schema.get("x-max-duration")
    if low is not None and seconds < duration_seconds(low):
        return [f"{path}: {value} is below the floor of {low}"]
    if high is not None and seconds > duration_seconds(high):
        return [f"{path}: {value} is above the ceiling of {high}"]
    return []


def _check_number(value: float, schema: Schema, path: str) -> list[str]:
    if "minimum" in schema and value < schema["minimum"]:
        return [f"{path}: {value} is less than the minimum of {schema['minimum']}"]
    if "maximum" in schema and value > schema["maximum"]:
        return [f"{path}: {value} is more than the maximum of {schema['maximum']}"]
    return []


def _check_array(value: list[Any], schema: Schema, path: str, root: Schema) -> list[str]:
    problems = []
    if "minItems" in schema and len(value) < schema["minItems"]:
        problems.append(f"{path}: needs at least {schema['minItems']} item(s)")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        problems.append(f"{path}: takes at most {schema['maxItems']} item(s)")
    if schema.get("uniqueItems") and len({repr(v) for v in value}) != len(value):
        problems.append(f"{path}: items must be unique")
    if "items" in schema:
        for index, item in enumerate(value):
            problems += validate(item, schema["items"], f"{path}[{index}]", root)
    return problems


def _check_object(value: dict[str, Any], schema: Schema, path: str, root: Schema) -> list[str]:
    problems = []
    properties: dict[str, Schema] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            problems.append(f"{path}.{name}: is required")
    extra = schema.get("additionalProperties", True)
    names = schema.get("propertyNames")
    for key, item in value.items():
        child = f"{path}.{key}"
        if not isinstance(key, str):
            problems.append(f"{path}: key {_show(key)} is not a string")
        elif names is not None:
            problems += [p.replace(f"{path}.<key>:", f"{child}: key") for p in
                         validate(key, names, f"{path}.<key>", root)]
        if key in properties:
            problems += validate(item, properties[key], child, root)
        elif extra is False:
            problems.append(f"{child}: {refused_key(schema, key) or 'unknown key'}"
                            f"{did_you_mean(key, properties)}")
        elif isinstance(extra, dict):
            problems += validate(item, extra, child, root)
    return problems


def refused_key(schema: Schema, key: str) -> str | None:
    """Why an object refuses a key on purpose (`x-refused-keys`), e.g. an inline password."""
    reasons: dict[str, str] = schema.get("x-refused-keys", {})
    return reasons.get(key)


def did_you_mean(key: str, known: Any) -> str:
    """A hint naming the closest of `known` (or all of them when few and none is close)."""
    from difflib import get_close_matches

    close = get_close_matches(str(key), list(known), n=3, cutoff=0.6)
    if close:
        return " (did you mean " + " or ".join(close) + "?)"
    if known and len(known) <= 12:
        return " (known: " + ", ".join(known) + ")"
    return ""
