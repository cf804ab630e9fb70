"""What `pattern ui` shows, as plain data: no web framework here (that is `web.app`).

The composer turns its form into a stack file and runs `pattern generate`'s own function on
it (`generate.generate_manifest`), and the diagram through `pattern diagram`'s
(`commands.diagram`); the inject view writes the pasted manifest to a file and runs
`pattern inject`'s (`commands.inject_manifests`) with the `--with`/`--set` words the CLI
would get. So what the page shows is what the command writes, byte for byte, and every
message is the command's. Each field is also checked on its own, with the check and the words
the command uses for that value, so its message stands beside it.
"""

from __future__ import annotations

import base64
import difflib
import json
import re
import shlex
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..catalogue import Catalogue, Pattern
from ..commands import InjectRequest, diagram, inject_manifests
from ..docs import parameter_rows
from ..errors import CatalogueError, InvalidValues, PatternError, UsageError, ValidationFailed
from ..generate import GenerateRequest, generate_manifest
from ..kinds import GENERATED
from ..sidecars import SidecarFlags
from ..stack import API_VERSION, check_flags
from ..values import check_value
from ..versions import DEFAULT_K8S_VERSION
from ..yamlio import MANIFEST_LIMIT, STACK_FILE_LIMIT, dump_documents

MAX_SIDECARS = 12  # more sidecar sections than any pod needs: a crafted request is refused
STACK_NAME = "stack.yaml"
MANIFEST_NAME = "manifest.yaml"
_SIDECAR_KEY = re.compile(r"s(\d{1,3})-pattern")
_SIDECAR_MODES = ("auto", "native", "classic")


class BadRequest(PatternError):
    """A request no form of ours sends (too many sidecars, a field out of place)."""


@dataclass
class Field:
    """One form field: its HTML name, what the person sees, and the check's message."""

    name: str
    label: str
    value: str = ""
    kind: str = "text"  # text, textarea or select
    description: str = ""
    placeholder: str = ""
    choices: tuple[tuple[str, str], ...] = ()  # (value, text) of a select
    required: bool = False
    error: str = ""
    hint: str = ""  # the type, as `pattern show` and the README tables give it

    @property
    def id(self) -> str:
        return "f-" + self.name


@dataclass
class SidecarForm:
    index: int
    pattern: Pattern
    instance: Field
    parameters: list[Field]
    volumes: list[Field]

    @property
    def prefix(self) -> str:
        return f"s{self.index}"

    def fields(self) -> Iterator[Field]:
        yield self.instance
        yield from self.parameters
        yield from self.volumes


@dataclass
class Result:
    """What a form gave: the fields with their messages, and the command's output or error."""

    fields: list[Field]
    sidecars: list[SidecarForm]
    problems: list[str] = field(default_factory=list)  # the command's, not tied to a field
    notes: list[str] = field(default_factory=list)
    output: str = ""  # the YAML the command writes
    stack: str = ""  # the composer's stack file
    svg: bytes = b""
    command: str = ""
    flags: str = ""  # the composer's command line without a stack file, when flags can say it
    diff: str = ""
    source: str = ""  # the inject view's manifest

    @property
    def ok(self) -> bool:
        return not self.problems and not any(f.error for f in self.all_fields())

    def all_fields(self) -> Iterator[Field]:
        yield from self.fields
        for sidecar in self.sidecars:
            yield from sidecar.fields()

    def errors(self) -> dict[str, str]:
        return {f.id: f.error for f in self.all_fields() if f.error}

    @property
    def svg_data(self) -> str:
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg).decode("ascii") \
            if self.svg else ""

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "errors": self.errors(), "problems": self.problems,
                "notes": self.notes, "output": self.output, "stack": self.stack,
                "svg": self.svg_data, "command": self.command, "flags": self.flags,
                "diff": self.diff,
                "diff_lines": diff_lines(self.diff)}


# ---------------------------------------------------------------- the catalogue

@dataclass(frozen=True)
class PatternPage:
    pattern: Pattern
    readme_html: str
    diagrams: list[str]  # example SVG file names (served from the pattern's examples/)


_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# Where a README link to a file this server does not serve goes (the project's sources).
SOURCE_URL = "https://github.com/sidecar-patterns/sidecar-patterns/blob/main/"
_EXAMPLE_TYPES = {".svg": "image/svg+xml", ".yaml": "text/plain", ".md": "text/plain"}


def render_markdown(text: str, link: Callable[[str], str] = lambda href: href) -> str:
    """A README as HTML; raw HTML in it is shown as text, never passed through. `link` maps
    each link and image address as written to the one the page uses."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(_COMMENT.sub("", text))
    for token in tokens:
        for child in [token, *(token.children or [])]:
            for attr in ("href", "src"):
                if isinstance(value := child.attrGet(attr), str):
                    child.attrSet(attr, link(value))
    html: str = md.renderer.render(tokens, md.options, {})
    return html


def example_files(pattern: Pattern) -> list[str]:
    """The files of a pattern's examples/ folder this server serves (by name, no folders)."""
    folder = pattern.root / "examples"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix in _EXAMPLE_TYPES)


def readme_link(pattern: Pattern, href: str) -> str:
    """A pattern README's link as its page serves it: an address, an anchor or an example
    file as written (the page is /patterns/NAME/, so examples/FILE resolves to its route);
    any other file of the repository at the project's sources."""
    if not href or href.startswith(("#", "/")) or re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", href):
        return href
    path, anchor, fragment = href.partition("#")
    if path.startswith("examples/") and path.removeprefix("examples/") in example_files(pattern):
        return href
    parts: list[str] = ["patterns", pattern.name]
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    target = "/".join(parts) + ("/" if path.endswith("/") else "")
    return SOURCE_URL + target + anchor + fragment


def pattern_page(catalogue: Catalogue, name: str) -> PatternPage:
    pattern = catalogue.get(name)
    readme = pattern.root / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else pattern.description
    diagrams = [f for f in example_files(pattern) if f.endswith(".svg")]
    return PatternPage(pattern, render_markdown(text, lambda href: readme_link(pattern, href)),
                       diagrams)


def example_file(catalogue: Catalogue, name: str, file: str) -> tuple[bytes, str]:
    """An example file of a pattern and its media type; any other name is not found."""
    pattern = catalogue.get(name)
    if file not in example_files(pattern):
        raise CatalogueError(f"{name} has no example file {file!r}")
    return (pattern.root / "examples" / file).read_bytes(), _EXAMPLE_TYPES[Path(file).suffix]


# ---------------------------------------------------------------- sidecar forms

def _describe(prop: dict[str, Any]) -> str:
    return " ".join(str(prop.get("description", "")).split())


def _example(row: dict[str, str]) -> str:
    """The first example as `--set` takes it (a string as it is, anything else as JSON)."""
    example = json.loads(row["example"])
    return example if isinstance(example, str) else row["example"]


def _parameter_field(prefix: str, key: str, prop: dict[str, Any], row: dict[str, str],
                     required: bool, form: Mapping[str, str]) -> Field:
    name = f"{prefix}-p-{key}"
    types = prop.get("type", "string")
    types = types if isinstance(types, list) else [types]
    default = prop.get("default")
    shown = "" if default is None else (str(default).lower() if isinstance(default, bool)
                                        else str(default))
    item = Field(name=name, label=key, value=form.get(name, ""), description=_describe(prop),
                 required=required, hint=row["type"],
                 placeholder=shown if default is not None else f"e.g. {_example(row)}")
    if "enum" in prop or types == ["boolean"]:
        options = prop.get("enum", [True, False])
        text = [str(o).lower() if isinstance(o, bool) else str(o) for o in options]
        blank = f"(default: {shown})" if default is not None else "(not set)"
        item.kind, item.choices = "select", (("", blank), *((t, t) for t in text))
    elif "array" in types or "object" in types:
        item.hint += ": comma-separated, or JSON"
    return item


def sidecar_form(catalogue: Catalogue, index: int, pattern_name: str, form: Mapping[str, str],
                 *, volumes: bool) -> SidecarForm:
    pattern = catalogue.get(pattern_name)  # an unknown name: CatalogueError, a 4xx
    prefix = f"s{index}"
    instance = Field(name=f"{prefix}-name", label="sidecar name", placeholder=pattern.name,
                     value=form.get(f"{prefix}-name", ""),
                     description="The container's name (default: the pattern's); "
                     "--with NAME=PATTERN.")
    required = set(pattern.required_parameters)
    rows = {row["name"]: row for row in parameter_rows(pattern)}
    parameters = [_parameter_field(prefix, key, prop, rows[key], key in required, form)
                  for key, prop in pattern.parameter_properties.items()]
    claims = [Field(name=f"{prefix}-v-{need.name}", label=f"volume {need.name}: claim",
                    value=form.get(f"{prefix}-v-{need.name}", ""),
                    description=f"{need.role} A PersistentVolumeClaim to use (default: an "
                    "emptyDir).")
              for need in pattern.volumes if volumes and need.app_mount_parameter]
    return SidecarForm(index, pattern, instance, parameters, claims)


def sidecar_forms(catalogue: Catalogue, form: Mapping[str, str], *, volumes: bool
                  ) -> list[SidecarForm]:
    """The sidecar sections of a form (`sN-pattern`), with the add/remove buttons applied."""
    indexes = sorted(int(m.group(1)) for key in form if (m := _SIDECAR_KEY.fullmatch(key)))
    action = form.get("action", "")
    indexes = [i for i in indexes if action != f"remove-{i}"]
    wanted = [(i, form[f"s{i}-pattern"]) for i in indexes]
    if action == "add" and form.get("add-pattern"):
        wanted.append((max(indexes, default=-1) + 1, form["add-pattern"]))
    if len(wanted) > MAX_SIDECARS:
        raise BadRequest(f"at most {MAX_SIDECARS} sidecars in one pod")
    return [sidecar_form(catalogue, i, name, form, volumes=volumes) for i, name in wanted]


def _instance(sidecar: SidecarForm) -> str:
    return sidecar.instance.value.strip() or sidecar.pattern.name


def _check_sidecars(sidecars: list[SidecarForm]) -> list[tuple[SidecarForm, str, Any, str]]:
    """Each sidecar field checked on its own, as `--with` and `--set` check it; returns (sidecar,
    key, typed value, text) of the given parameters."""
    given: list[tuple[SidecarForm, str, Any, str]] = []
    for sidecar in sidecars:
        if sidecar.instance.value.strip():
            sidecar.instance.error = _flag_problem("--with", sidecar.instance.value.strip())
        for item in sidecar.parameters:
            text = item.value
            if text == "":
                if item.required:
                    item.error = f"{_instance(sidecar)}.{item.label}: is required"
                continue
            value, problems = check_value(sidecar.pattern, _instance(sidecar), item.label, text)
            item.error = "; ".join(problems)
            given.append((sidecar, item.label, value, text))
        for item in sidecar.volumes:
            if item.value.strip():
                item.error = _flag_problem("--volume", item.value.strip())
    return given


def _flag_problem(flag: str, value: Any) -> str:
    try:
        check_flags([(flag, value)])
    except UsageError as error:
        return str(error)
    return ""


def _place_problems(result: Result, problems: list[str]) -> None:
    """The command's problems beside the field they name (`INSTANCE.KEY: ...`), the rest on
    top."""
    labels = {f"{_instance(s)}.{p.label}": p for s in result.sidecars for p in s.parameters}
    for problem in problems:
        head = problem.split(": ", 1)[0]
        target = next((f for label, f in labels.items()
                       if head == label or head.startswith((label + ".", label + "["))), None)
        if target is not None and not target.error:
            target.error = problem
        else:
            result.problems.append(problem)


def _command_problems(error: PatternError) -> list[str]:
    if isinstance(error, (InvalidValues, ValidationFailed)):
        return list(error.problems)
    return [str(error)]


@contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pattern-ui-") as folder:
        yield Path(folder)


def _clean(text: str, folder: Path) -> str:
    """Messages name the file as the person knows it (stack.yaml), not our scratch folder."""
    return text.replace(f"{folder}/", "")


def editing(form: Mapping[str, str]) -> bool:
    """A sidecar added or removed: the page is shown again to be filled in, not run."""
    action = form.get("action", "")
    return action == "add" or action.startswith("remove-")


def _quiet_required(result: Result) -> None:
    for item in result.all_fields():
        if item.error.endswith(": is required") and not item.value:
            item.error = ""


# ---------------------------------------------------------------- the composer

def composer_fields(form: Mapping[str, str]) -> list[Field]:
    def get(name: str, default: str = "") -> str:
        return form.get(name, default)

    return [
        Field("name", "workload name", get("name"), required=True, placeholder="database",
              description="metadata.name (--name): a DNS label."),
        Field("namespace", "namespace", get("namespace"), description="metadata.namespace "
              "(--namespace)."),
        Field("kind", "kind", get("kind", "Pod"), kind="select",
              choices=tuple((k, k) for k in GENERATED), description="The workload (--kind)."),
        Field("replicas", "replicas", get("replicas"),
              description="Replicas of a Deployment or StatefulSet (--replicas)."),
        Field("schedule", "schedule", get("schedule"), placeholder="*/5 * * * *",
              description="Cron schedule of a CronJob (--schedule)."),
        Field("k8s_version", "Kubernetes version", get("k8s_version", DEFAULT_K8S_VERSION),
              description="Target X.Y (--k8s-version); 1.29+ gets native sidecars."),
        Field("sidecar_mode", "sidecar mode", get("sidecar_mode", "auto"), kind="select",
              choices=tuple((m, m) for m in _SIDECAR_MODES),
              description="auto (by version), native or classic (--sidecar-mode)."),
        Field("app_image", "app image", get("app_image"), required=True,
              placeholder="nginx:1.27-bookworm", description="The app's image (--app-image)."),
        Field("app_command", "app command", get("app_command"),
              description="Split like a shell would (--app-command); empty: the image's."),
        Field("app_ports", "app ports", get("app_ports"), placeholder="8080 9090",
              description="Ports the app listens on, separated by spaces (--app-port)."),
        Field("app_env", "app environment", get("app_env"), kind="textarea",
              placeholder="KEY=VALUE", description="One KEY=VALUE a line (--app-env)."),
    ]


def _app_spec(fields: dict[str, Field]) -> dict[str, Any]:
    """The stack's spec.app and the rest of spec, from the app fields (each checked as the
    flag of the same meaning)."""
    spec: dict[str, Any] = {"kind": fields["kind"].value or "Pod"}
    checks: list[tuple[str, str, Any]] = [("kind", "--kind", spec["kind"])]
    replicas = fields["replicas"].value.strip()
    if replicas:
        if re.fullmatch(r"-?\d{1,12}", replicas):
            spec["replicas"] = int(replicas)
            checks.append(("replicas", "--replicas", spec["replicas"]))
        else:
            fields["replicas"].error = f"--replicas: {replicas!r} is not a valid integer"
    if fields["schedule"].value:
        spec["schedule"] = fields["schedule"].value
        checks.append(("schedule", "--schedule", spec["schedule"]))
    version = fields["k8s_version"].value.strip() or DEFAULT_K8S_VERSION
    spec["k8sVersion"] = version
    checks.append(("k8s_version", "--k8s-version", version))
    if fields["sidecar_mode"].value not in ("", "auto"):
        spec["sidecarMode"] = fields["sidecar_mode"].value
        checks.append(("sidecar_mode", "--sidecar-mode", spec["sidecarMode"]))
    app: dict[str, Any] = {"image": fields["app_image"].value.strip()}
    if not app["image"]:
        fields["app_image"].error = "--app-image: is required"
    else:
        checks.append(("app_image", "--app-image", app["image"]))
    if fields["app_command"].value.strip():
        try:
            app["command"] = shlex.split(fields["app_command"].value)
        except ValueError as error:
            fields["app_command"].error = f"--app-command: {error}"
    ports: list[dict[str, int]] = []
    for word in fields["app_ports"].value.replace(",", " ").split():
        if not re.fullmatch(r"\d{1,6}", word):
            fields["app_ports"].error = f"--app-port: {word!r} is not a valid integer"
            break
        ports.append({"containerPort": int(word)})
        checks.append(("app_ports", "--app-port", int(word)))
    if ports:
        app["ports"] = ports
    env: list[dict[str, str]] = []
    for line in fields["app_env"].value.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key:
            fields["app_env"].error = f"--app-env {line!r}: expected KEY=VALUE"
            break
        env.append({"name": key, "value": value})
        checks.append(("app_env", "--app-env", key))
    if env:
        app["env"] = env
    for name, flag, value in checks:
        if not fields[name].error:
            fields[name].error = _flag_problem(flag, value)
    spec["app"] = app
    return spec


def stack_document(fields: dict[str, Field], sidecars: list[SidecarForm],
                   given: list[tuple[SidecarForm, str, Any, str]]) -> dict[str, Any]:
    name = fields["name"].value.strip()
    if not name:
        fields["name"].error = "--name: is required"
    else:
        fields["name"].error = _flag_problem("--name", name)
    metadata: dict[str, Any] = {"name": name}
    if fields["namespace"].value.strip():
        metadata["namespace"] = fields["namespace"].value.strip()
        fields["namespace"].error = _flag_problem("--namespace", metadata["namespace"])
    spec = _app_spec(fields)
    items: list[dict[str, Any]] = []
    for sidecar in sidecars:
        item: dict[str, Any] = {"pattern": sidecar.pattern.name}
        if sidecar.instance.value.strip():
            item["name"] = sidecar.instance.value.strip()
        values = {key: value for owner, key, value, _ in given if owner is sidecar}
        if values:
            item["values"] = values
        claims = {f.name.rsplit("-v-", 1)[1]: {"persistentVolumeClaim": {"claimName":
                                                                         f.value.strip()}}
                  for f in sidecar.volumes if f.value.strip()}
        if claims:
            item["volumes"] = claims
        items.append(item)
    if items:
        spec["sidecars"] = items
    return {"apiVersion": API_VERSION, "kind": "Stack", "metadata": metadata, "spec": spec}


def generate_words(document: dict[str, Any], given: list[tuple[SidecarForm, str, Any, str]]
                   ) -> list[str] | None:
    """`pattern generate` with flags only, for the same stack; None when a flag cannot say
    it (a sidecar volume from a claim)."""
    meta, spec = document["metadata"], document["spec"]
    app = spec["app"]
    if any("volumes" in item for item in spec.get("sidecars", [])):
        return None
    words = ["pattern", "generate", "--name", meta["name"]]
    if "namespace" in meta:
        words += ["--namespace", meta["namespace"]]
    if spec["kind"] != "Pod":
        words += ["--kind", spec["kind"]]
    for key, flag in (("replicas", "--replicas"), ("schedule", "--schedule"),
                      ("sidecarMode", "--sidecar-mode")):
        if key in spec:
            words += [flag, str(spec[key])]
    if spec["k8sVersion"] != DEFAULT_K8S_VERSION:
        words += ["--k8s-version", spec["k8sVersion"]]
    words += ["--app-image", app["image"]]
    if "command" in app:
        words += ["--app-command", shlex.join(app["command"])]
    for port in app.get("ports", []):
        words += ["--app-port", str(port["containerPort"])]
    for env in app.get("env", []):
        words += ["--app-env", f"{env['name']}={env['value']}"]
    for item in spec.get("sidecars", []):
        words += ["--with", f"{item['name']}={item['pattern']}" if "name" in item
                  else item["pattern"]]
    for owner, key, _, text in given:
        words += ["--set", f"{_instance(owner)}.{key}={text}"]
    return [*words, "--output-file", f"{meta['name']}.yaml"]


STACK_HEADER = "# A stack file from `pattern ui`: pattern generate -f {file}\n"


def compose_view(catalogue: Catalogue, form: Mapping[str, str], *, draw: bool = True) -> Result:
    """The composer: its fields checked, and when they pass, `pattern generate -f` of the stack
    file they make (and `pattern diagram` of it)."""
    fields = composer_fields(form)
    sidecars = sidecar_forms(catalogue, form, volumes=True)
    if not form:  # a fresh page: nothing to check yet
        return Result(fields=fields, sidecars=sidecars)
    given = _check_sidecars(sidecars)
    by_name = {f.name: f for f in fields}
    document = stack_document(by_name, sidecars, given)
    name = document["metadata"]["name"] or "demo"
    file = f"{name}.stack.yaml"
    result = Result(fields=fields, sidecars=sidecars)
    result.stack = STACK_HEADER.format(file=file) + dump_documents([document])
    result.command = shlex.join(["pattern", "generate", "-f", file, "--output-file",
                                 f"{name}.yaml"])
    flags = generate_words(document, given)
    result.flags = shlex.join(flags) if flags else "(a sidecar volume from a claim needs the " \
        "stack file)"
    if editing(form):
        _quiet_required(result)
    if not result.ok or editing(form):
        return result
    if len(result.stack.encode("utf-8")) > STACK_FILE_LIMIT:
        result.problems.append(f"{STACK_NAME}: larger than the {STACK_FILE_LIMIT >> 20} MiB "
                               "pattern generate reads")
        return result
    with _scratch() as folder:
        path = folder / STACK_NAME
        path.write_text(result.stack, encoding="utf-8")
        try:
            result.output, notes = generate_manifest(
                GenerateRequest(file=str(path), catalogue=catalogue.root))
            result.notes = [_clean(n, folder) for n in notes]
            if draw:
                result.svg = diagram(str(path), "svg", catalogue.root)
        except PatternError as error:
            _place_problems(result, [_clean(p, folder) for p in _command_problems(error)])
    return result


# ---------------------------------------------------------------- inject

def inject_words(sidecars: list[SidecarForm], given: list[tuple[SidecarForm, str, Any, str]]
                 ) -> tuple[list[str], list[str]]:
    """The `--with` and `--set` values the CLI would get for these sidecars."""
    with_ = [f"{s.instance.value.strip()}={s.pattern.name}" if s.instance.value.strip()
             else s.pattern.name for s in sidecars]
    set_ = [f"{_instance(owner)}.{key}={text}" for owner, key, _, text in given]
    return with_, set_


def inject_view(catalogue: Catalogue, form: Mapping[str, str], upload: bytes | None = None
                ) -> Result:
    """`pattern inject -f manifest.yaml --with ... --set ...` of a pasted or uploaded manifest,
    and the diff of what it changed."""
    sidecars = sidecar_forms(catalogue, form, volumes=False)
    if not form and not upload:  # a fresh page
        return Result(fields=[], sidecars=sidecars)
    given = _check_sidecars(sidecars)
    result = Result(fields=[], sidecars=sidecars)
    # A browser sends a textarea's lines with CRLF (the HTML rule), whatever was pasted; an
    # upload is taken as its bytes are.
    source = form.get("manifest", "").replace("\r\n", "\n")
    if upload:
        if len(upload) > MANIFEST_LIMIT:
            raise UploadTooLarge()
        try:
            source = upload.decode("utf-8")
        except UnicodeDecodeError as error:
            raise BadRequest(f"{MANIFEST_NAME}: not UTF-8 text (byte {error.start + 1})"
                             ) from None
    result.source = source
    with_, set_ = inject_words(sidecars, given)
    words = ["pattern", "inject", "-f", MANIFEST_NAME]
    for item in with_:
        words += ["--with", item]
    for item in set_:
        words += ["--set", item]
    result.command = shlex.join(words)
    if editing(form):
        _quiet_required(result)
    if not result.ok or editing(form):
        return result
    if not source.strip():
        result.problems.append("paste a manifest or upload one")
        return result
    if not sidecars:
        result.problems.append("name the sidecars to inject: add one from the catalogue")
        return result
    with _scratch() as folder:
        path = folder / MANIFEST_NAME
        path.write_text(source, encoding="utf-8")
        try:
            result.output, notes = inject_manifests(InjectRequest(
                files=[str(path)], sidecars=SidecarFlags(with_=tuple(with_), set_=tuple(set_)),
                catalogue=catalogue.root))
            result.notes = [_clean(n, folder) for n in notes]
        except PatternError as error:
            _place_problems(result, [_clean(p, folder) for p in _command_problems(error)])
            return result
    result.diff = "".join(difflib.unified_diff(
        source.splitlines(keepends=True), result.output.splitlines(keepends=True),
        fromfile=MANIFEST_NAME, tofile="injected.yaml"))
    return result


class UploadTooLarge(PatternError):
    """More than a manifest may be (the limit every command reads with)."""

    def __init__(self) -> None:
        super().__init__(f"the upload is larger than the {MANIFEST_LIMIT >> 20} MiB pattern "
                         "inject reads")


def diff_lines(diff: str) -> list[tuple[str, str]]:
    """(css class, line) of a unified diff, for the page."""
    classes: dict[str, str] = {"+": "add", "-": "del", "@": "hunk"}
    return [("head" if line.startswith(("+++", "---")) else classes.get(line[:1], "same"),
             line.rstrip("\n")) for line in diff.splitlines()]

