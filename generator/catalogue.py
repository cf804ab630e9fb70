"""The pattern catalogue: finding it, loading `pattern.yaml` files, and looking patterns up."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from . import schema
from .errors import CatalogueError
from .shipped import package_file, shipped_folder
from .yamlio import load_documents, read_text

CATALOGUE_ENV = "SIDECAR_PATTERNS_CATALOGUE"
TEMPLATE_CONTAINER = "container.yaml.j2"
TEMPLATE_INIT = "init-container.yaml.j2"
TEMPLATE_OBJECTS = "objects.yaml.j2"
TEMPLATE_POD = "pod.yaml.j2"


@dataclass(frozen=True)
class VolumeNeed:
    """A volume the sidecar shares with the app (or keeps for itself)."""

    name: str
    role: str
    app_mount_parameter: str | None = None
    app_read_only: bool = False
    config_map: str | None = None  # name suffix of a ConfigMap the pattern renders
    secret_parameter: str | None = None  # parameter naming a user's Secret; unset = no volume
    config_map_parameter: str | None = None  # the same for a user's ConfigMap

    @property
    def user_object_parameter(self) -> str | None:
        """The parameter naming the user's Secret or ConfigMap this volume is, if any."""
        return self.secret_parameter or self.config_map_parameter


@dataclass(frozen=True)
class PortNeed:
    """A port the sidecar listens on, fixed or taken from a parameter."""

    name: str
    role: str
    parameter: str | None = None
    port: int | None = None


@dataclass(frozen=True)
class Pattern:
    name: str
    version: str
    summary: str
    description: str
    images: dict[str, str]
    parameters: dict[str, Any]
    root: Path
    start_before_app: bool = False
    volumes: tuple[VolumeNeed, ...] = ()
    ports: tuple[PortNeed, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def template(self, name: str) -> Path | None:
        path = self.root / "templates" / name
        return path if path.is_file() else None

    @property
    def parameter_properties(self) -> dict[str, dict[str, Any]]:
        props: dict[str, dict[str, Any]] = self.parameters.get("properties", {})
        return props

    @property
    def required_parameters(self) -> list[str]:
        required: list[str] = self.parameters.get("required", [])
        return required

    def defaults(self) -> dict[str, Any]:
        return {k: v["default"] for k, v in self.parameter_properties.items() if "default" in v}


def default_root() -> Path:
    """The catalogue folder: $SIDECAR_PATTERNS_CATALOGUE, the installed copy, or the checkout's."""
    configured = os.environ.get(CATALOGUE_ENV)
    return Path(configured) if configured else shipped_folder("patterns")


@cache
def meta_schema() -> dict[str, Any]:
    text, source = read_text(str(package_file("schemas", "pattern.schema.yaml")))
    loaded: dict[str, Any] = load_documents(text, source)[0]
    return loaded


def load_pattern(folder: Path) -> Pattern:
    """Read and check one pattern folder; every problem is reported with the file's path."""
    meta_path = folder / "pattern.yaml"
    if not meta_path.is_file():
        raise CatalogueError(f"{folder}: not a pattern folder (no pattern.yaml)")
    text, source = read_text(str(meta_path))
    docs = load_documents(text, source)
    if len(docs) != 1:
        raise CatalogueError(f"{source}: expected exactly one YAML document")
    data = docs[0]
    problems = schema.validate(data, meta_schema(), "pattern")
    if not problems:
        problems = _semantic_problems(data, folder)
    if problems:
        raise CatalogueError(f"{source}: " + "; ".join(problems))
    spec = data["spec"]
    return Pattern(
        name=data["metadata"]["name"],
        version=spec["version"],
        summary=spec["summary"],
        description=spec["description"],
        images=dict(spec["images"]),
        parameters=spec["parameters"],
        root=folder,
        start_before_app=bool(spec.get("startBeforeApp", False)),
        volumes=tuple(
            VolumeNeed(
                v["name"], v["role"], v.get("appMountParameter"), v.get("appReadOnly", False),
                v.get("configMap"), v.get("secretParameter"), v.get("configMapParameter"),
            )
            for v in spec.get("volumes", [])
        ),
        ports=tuple(
            PortNeed(p["name"], p["role"], p.get("parameter"), p.get("port"))
            for p in spec.get("ports", [])
        ),
        raw=data,
    )


def _semantic_problems(data: dict[str, Any], folder: Path) -> list[str]:
    """Rules the meta-schema cannot say: names match folders, references resolve."""
    spec = data["spec"]
    name = data["metadata"]["name"]
    params = spec["parameters"]["properties"]
    problems = []
    if name != folder.name:
        problems.append(f"metadata.name {name!r} must equal the folder name {folder.name!r}")
    if not spec["images"]:
        problems.append("spec.images: needs at least one image")
    for key in spec["parameters"].get("required", []):
        if key not in params:
            problems.append(f"spec.parameters.required: {key!r} is not a parameter")
    for key, prop in params.items():
        if "default" in prop and key in spec["parameters"].get("required", []):
            problems.append(f"spec.parameters.{key}: is required, so it must not have a default")
        samples = [(f"examples[{i}]", example) for i, example in enumerate(prop["examples"])]
        if "default" in prop:
            samples.insert(0, ("default", prop["default"]))
        for where, value in samples:
            problems += schema.validate(value, prop, f"spec.parameters.{key}.{where}")
    for need in spec.get("volumes", []):
        sources = [k for k in ("configMap", "secretParameter", "configMapParameter") if k in need]
        if len(sources) > 1:
            problems.append(f"spec.volumes.{need['name']}: {' and '.join(sources)} exclude "
                            "each other")
        for key in ("secretParameter", "configMapParameter"):
            named = need.get(key)
            if named is not None and params.get(named, {}).get("format") != "dns-label":
                problems.append(f"spec.volumes.{need['name']}.{key}: {named!r} must name "
                                "a parameter with format dns-label")
        ref = need.get("appMountParameter")
        if ref is not None and params.get(ref, {}).get("format") != "absolute-path":
            problems.append(
                f"spec.volumes.{need['name']}.appMountParameter: {ref!r} must name a parameter "
                "with format absolute-path"
            )
    for port in spec.get("ports", []):
        if ("parameter" in port) == ("port" in port):
            problems.append(f"spec.ports.{port['name']}: give exactly one of parameter or port")
        elif "parameter" in port and params.get(port["parameter"], {}).get("type") != "integer":
            problems.append(f"spec.ports.{port['name']}.parameter: must name an integer parameter")
    if not (folder / "templates" / TEMPLATE_CONTAINER).is_file():
        problems.append(f"templates/{TEMPLATE_CONTAINER} is missing")
    if spec.get("startBeforeApp") and not (folder / "templates" / TEMPLATE_INIT).is_file():
        problems.append(
            f"startBeforeApp needs templates/{TEMPLATE_INIT} for targets without native sidecars"
        )
    return problems


def is_pattern_name(name: str) -> bool:
    """Whether `name` may name a pattern (and so a folder): the meta-schema's rule."""
    return not schema.validate(name, meta_schema()["$defs"]["name"], "name")


class Catalogue:
    """All patterns under one folder, loaded lazily and cached."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else default_root()
        self._cache: dict[str, Pattern] = {}

    def names(self) -> list[str]:
        """The pattern folders: those named as a pattern may be (`_lib`, a hidden folder or a
        stray name is not one) and holding a pattern.yaml."""
        try:
            if not self.root.is_dir():
                raise CatalogueError(f"catalogue folder {self.root} does not exist")
            return sorted(p.name for p in self.root.iterdir()
                          if is_pattern_name(p.name) and (p / "pattern.yaml").is_file())
        except OSError as error:
            raise CatalogueError(f"catalogue folder {str(self.root)[:80]}: "
                                 f"{error.strerror or error}") from None

    def get(self, name: str) -> Pattern:
        if name not in self._cache:
            if not is_pattern_name(name) or not (self.root / name / "pattern.yaml").is_file():
                hint = schema.did_you_mean(name, self.names()) or " (pattern list shows them)"
                raise CatalogueError(f"unknown pattern {name!r}{hint}")
            self._cache[name] = load_pattern(self.root / name)
        return self._cache[name]

    def all(self) -> list[Pattern]:
        return [self.get(name) for name in self.names()]
