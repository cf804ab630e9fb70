"""A stream of manifests, read and written back as it was: the round-trip YAML of `inject`.

The stream is split at its `---` lines and each document is parsed on its own with ruamel.yaml's
round-trip loader, so a document we do not change is written back as the very bytes we read,
and one we change keeps its comments, key order and quoting. What we add is written so that it
reads back the same under YAML 1.1 (kubectl, the API server, PyYAML) and YAML 1.2.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml as yaml11
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString, ScalarString

from .errors import ManifestError, UsageError
from .kinds import is_stack_file
from .yamlio import check_shape, is_folder, read_exactly

_DOC_START = re.compile(r"---(?:[ \t].*)?\r?\n?")
_DOC_END = re.compile(r"^\.\.\.(?:[ \t].*)?$", re.MULTILINE)
_DOC_MARKER = re.compile(r"---[ \t]*(?:#.*)?\r?\n")
_BLOCK_KEY = re.compile(r"( *)[^\s#\-][^#]*:[ \t]*(?:#.*)?")
_YAML11 = yaml11.resolver.Resolver()
_STR = "tag:yaml.org,2002:str"


class StreamError(ManifestError):
    """A manifest stream cannot be read or changed as asked; the message names the document."""


# ---------------------------------------------------------------- the YAML stream

@dataclass
class Document:
    """One `---`-separated part of an input, kept verbatim until it changes."""

    source: str
    index: int  # 1-based among the source's documents; 0 for comment-only parts
    line: int  # 1-based line of its first line in the source
    text: str
    data: Any = None
    changed: bool = False
    removed: bool = False
    before: list[Any] = field(default_factory=list)  # new documents to write before this one
    items_before: dict[int, list[Any]] = field(default_factory=dict)  # same, in a List's items
    items_removed: set[int] = field(default_factory=set)

    @property
    def header(self) -> str:
        """Its opening `---` line, or ""."""
        return self.text.split("\n", 1)[0] + "\n" if self.text.startswith("---") else ""

    def where(self) -> str:
        return f"{self.source}: document {self.index} (line {self.line})"


def _is_blank(text: str) -> bool:
    """Only comments, directives, markers and blank lines: no document."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "%")) and stripped not in {"---", "..."}:
            return False
    return True


def split_stream(text: str, source: str) -> list[Document]:
    """The parts of a stream, cut before each `---` line (a marker no scalar may contain)."""
    parts: list[tuple[int, list[str]]] = [(1, [])]
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if _DOC_START.fullmatch(line) and parts[-1][1]:
            parts.append((number, []))
        parts[-1][1].append(line)
    documents = []
    index = 0
    for line_number, lines in parts:
        chunk = "".join(lines)
        if not chunk:
            continue
        blank = _is_blank(chunk)
        index += 0 if blank else 1
        documents.append(Document(source, 0 if blank else index, line_number, chunk))
    return documents


def _indentation(text: str) -> tuple[int, int]:
    """(mapping indent, sequence dash offset) as the document writes them; (2, 2) by default."""
    mapping: int | None = None
    offset: int | None = None
    opener: int | None = None  # indent of the last `key:` line that opens a block
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(stripped)
        if opener is not None and indent >= opener:
            if stripped.startswith("- ") or stripped == "-":
                offset = indent - opener if offset is None else offset
            elif indent > opener:
                mapping = indent - opener if mapping is None else mapping
        if mapping is not None and offset is not None:
            break
        match = _BLOCK_KEY.fullmatch(line)
        opener = len(match.group(1)) if match else None
    return mapping or 2, 2 if offset is None else offset


@cache
def _yaml(mapping: int, offset: int) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 1 << 20  # never fold a long line the user wrote on one line
    yaml.indent(mapping=mapping, sequence=offset + 2, offset=offset)
    return yaml


def parse(document: Document) -> None:
    """Load a document's data; errors name its index and line."""
    if document.index == 0:
        return
    check_shape(document.text, document.source, document.line)
    try:
        document.data = _yaml(2, 2).load(document.text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = document.line + (mark.line if mark is not None else 0)
        problem = error.problem or error.context or "unreadable"
        raise StreamError(f"{document.source}: document {document.index} (line {line}): "
                          f"not valid YAML: {problem}") from None
    except YAMLError as error:
        raise StreamError(f"{document.where()}: not valid YAML: {error}") from None
    if not isinstance(document.data, dict) or not isinstance(document.data.get("kind"), str):
        raise StreamError(f"{document.where()}: not a Kubernetes object (it has no kind)")
    if is_stack_file(document.data):
        raise StreamError(f"{document.source}: a stack file, not a manifest: make the workload "
                          f"with `pattern generate -f {document.source}`")


def _dump(data: Any, like: str) -> str:
    """Dump a changed document in the indentation, line endings and final newline of `like`."""
    stream = io.StringIO()
    _yaml(*_indentation(like)).dump(data, stream)
    text = stream.getvalue()
    if "\r\n" in like:
        text = text.replace("\n", "\r\n")
    return text if like.endswith("\n") else text.rstrip("\r\n")


def _new_document(obj: dict[str, Any]) -> str:
    stream = io.StringIO()
    _yaml(2, 2).dump(obj, stream)
    return stream.getvalue()


def _rebuild_list(doc: Document) -> None:
    items = doc.data["items"]
    rebuilt = []
    for position, item in enumerate(items):
        rebuilt += doc.items_before.get(position, [])
        if position not in doc.items_removed:
            rebuilt.append(item)
    items[:] = rebuilt


def render_stream(documents: list[Document]) -> str:
    """The documents as one stream: untouched ones verbatim, changed ones dumped again.

    The first document written has a `---` line only if the input's first one had; every
    later one has one. So inserting an object before a bare first document, then removing
    it, gives back the input's bytes.
    """
    bare = next((not d.header for d in documents if d.index), True)
    out: list[str] = []
    first = True

    def header_for(own: str) -> str:
        return "" if first and bare else own or "---\n"

    for doc in documents:
        for obj in doc.before:
            out.append(header_for("") + _new_document(obj))
            first = False
        if doc.removed:
            continue
        if not doc.index:
            out.append(doc.text)
            continue
        header = header_for(doc.header)
        body = doc.text[len(doc.header):]
        if doc.items_before or doc.items_removed:
            _rebuild_list(doc)
        if doc.changed:
            # ruamel drops a `...` end marker and what follows it: keep them as written
            end = _DOC_END.search(body)
            tail = body[end.start():] if end else ""
            out.append(header + _dump(doc.data, body[: len(body) - len(tail)]) + tail)
        elif header == doc.header or not _DOC_MARKER.fullmatch(doc.header):
            out.append(doc.text)  # as read; a `--- content` line stays as written too
        else:
            out.append(header + body)
        first = False
    return "".join(out)



# ---------------------------------------------------------------- objects in the stream

@dataclass
class Slot:
    """A Kubernetes object and where it sits: a document, or an item of a List document."""

    document: Document
    obj: dict[str, Any]
    item: int | None = None  # index in the List's items

    def label(self) -> str:
        meta = metadata_of(self.obj)
        name = meta.get("name") or meta.get("generateName") or "?"
        what = f"{self.obj.get('kind')}/{name}"
        inner = f" item {self.item + 1}" if self.item is not None else ""
        return f"{self.document.source}: document {self.document.index}{inner} ({what})"


def slots(documents: list[Document]) -> Iterator[Slot]:
    for doc in documents:
        if doc.data is None:
            continue
        if doc.data.get("kind") == "List" and isinstance(doc.data.get("items"), list):
            for position, item in enumerate(doc.data["items"]):
                if not isinstance(item, dict) or not isinstance(item.get("kind"), str):
                    raise StreamError(f"{doc.where()}: items[{position}] has no kind")
                yield Slot(doc, item, position)
        else:
            yield Slot(doc, doc.data)


def metadata_of(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def annotations_of(meta: dict[str, Any]) -> dict[str, Any]:
    found = meta.get("annotations")
    return found if isinstance(found, dict) else {}


def object_key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = metadata_of(obj)
    return str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name") or "")


def owner_text(obj: dict[str, Any]) -> str:
    kind, namespace, name = object_key(obj)
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"



# ---------------------------------------------------------------- plain data and new content

def plain(node: Any) -> Any:
    """ruamel's commented nodes and scalar subclasses as plain Python data."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    for kind in (str, int, float):
        if isinstance(node, kind):
            return kind(node)
    return node


def _reads_as_text(text: str) -> bool:
    """Whether a plain scalar reads back as this string under YAML 1.1 (where on, off, yes,
    no, y, n, 1_000 and 1:20 are not strings) and 1.2 (which ruamel's writer quotes for)."""
    tag: str = _YAML11.resolve(yaml11.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    return tag == _STR


def readable(node: Any) -> Any:
    """New content as it reads best and safest: multi-line text as literal blocks, like
    generate writes, and text YAML 1.1 would misread double-quoted."""
    if isinstance(node, dict):
        return {k: readable(v) for k, v in node.items()}
    if isinstance(node, list):
        return [readable(v) for v in node]
    if not isinstance(node, str) or isinstance(node, ScalarString):
        return node
    if "\n" in node and not node.startswith((" ", "\n")) and all(
        line == line.rstrip() for line in node.split("\n")
    ) and all(c == "\n" or 0x20 <= ord(c) < 0x7F or ord(c) >= 0xA0 for c in node):
        return LiteralScalarString(node)
    return node if _reads_as_text(node) else DoubleQuotedScalarString(node)


def set_key(mapping: dict[str, Any], key: str, value: Any, before: str | None = None) -> str:
    """Give `mapping[key]` a value of its own; how it was before: "", "absent" or "null"."""
    if key in mapping and mapping[key] is not None:
        return ""
    how = "null" if key in mapping else "absent"
    position = None
    if how == "absent" and isinstance(mapping, CommentedMap):
        # where a reader looks for it: initContainers before containers, metadata first
        position = list(mapping).index(before) if before in mapping else \
            0 if key == "metadata" else None
    if position is not None and isinstance(mapping, CommentedMap):
        mapping.insert(position, key, value)
    else:
        mapping[key] = value
    return how



# ---------------------------------------------------------------- whole streams

def parse_stream(text: str, source: str) -> list[Document]:
    """A stream split into its documents, each parsed; errors name the document and line."""
    documents = split_stream(text, source)
    for document in documents:
        parse(document)
    return documents


def read_sources(paths: list[str]) -> list[list[Document]]:
    """Each input (a file, '-' for stdin, or a folder's YAML/JSON files), parsed."""
    if not paths:
        raise UsageError("give the manifests with -f FILE (or -f - for stdin, or -f DIR)")
    sources: list[list[Document]] = []
    for path in paths:
        names = [path]
        if path != "-" and is_folder(path):
            names = sorted(str(p) for p in Path(path).rglob("*")
                           if p.is_file() and p.suffix in {".yaml", ".yml", ".json"})
            if not names:
                raise ManifestError(f"{path}: no .yaml, .yml or .json files in this folder")
        for name in names:
            documents = parse_stream(*read_exactly(name))
            if not any(d.index for d in documents):
                source = "<stdin>" if name == "-" else name
                raise ManifestError(f"{source}: no Kubernetes objects in it (empty, or only "
                                    "comments)")
            sources.append(documents)
    return sources


def join_sources(sources: list[list[Document]]) -> str:
    parts: list[str] = []
    for documents in sources:
        text = render_stream(documents)
        if parts and text and not text.startswith("---"):
            text = "---\n" + text
        if parts and not parts[-1].endswith("\n"):
            parts[-1] += "\n"
        parts.append(text)
    return "".join(parts)


def remove_slot(slot: Slot) -> None:
    if slot.item is None:
        slot.document.removed = True
    else:
        slot.document.items_removed.add(slot.item)
        slot.document.changed = True


