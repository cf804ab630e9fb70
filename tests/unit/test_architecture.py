"""The layers of generator/ (see generator/ARCHITECTURE.md): a module imports only from its own
layer or below, and no two modules import each other in a loop.

`python tests/unit/test_architecture.py [ROOT]` prints the import graph of ROOT/generator.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Lowest first. A new module gets a layer here (the test fails until it does).
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation", {"errors", "shipped", "versions", "output", "schema", "yamlio"}),
    ("model", {"catalogue", "kinds", "values", "rules", "render"}),
    ("pipeline", {"sidecars", "stack", "workloads", "compose", "manifests", "inject",
                  "component", "krm", "validate", "webhook"}),
    ("runtime", {"images", "runner", "runner.plan", "runner.podman", "runner.probes",
                 "runner.run", "runner.state", "runner.runtime", "runner.docker",
                 "runner.engines", "runner.cli_engine", "runner.atomic", "webhook_server"}),
    ("commands", {"generate", "docs", "scaffold", "commands", "diagram", "web.views",
                  "webhook_manifests"}),
    ("surface", {"cli", "__main__", "__init__", "web", "web.app"}),
]


def _module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the generator modules it imports (relative or absolute imports)."""
    package = root / "generator"
    modules = {_module_name(p, package): p for p in package.rglob("*.py")
               if "scaffold/" not in str(p.relative_to(package)).replace("\\", "/")
               or p.name == "__init__.py"}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        here = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
        if name == "__init__":
            here = []
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                    target = ".".join([*base, *(node.module or "").split(".")]).strip(".")
                elif (node.module or "").startswith("generator"):
                    target = (node.module or "").removeprefix("generator").strip(".")
                else:
                    continue
                candidates = [target] if target else []
                candidates += [f"{target}.{a.name}".strip(".") for a in node.names]
                found.update(c for c in candidates if c in modules)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("generator."):
                        target = alias.name.removeprefix("generator.")
                        if target in modules:
                            found.add(target)
        found.discard(name)
        graph[name] = found
    return graph


def layer_of(module: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        if module in members:
            return index
    raise AssertionError(f"generator/{module}: give it a layer in {__file__} (LAYERS)")


def test_no_module_imports_a_higher_layer() -> None:
    upward = [f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} "
              f"({LAYERS[layer_of(target)][0]})"
              for module, targets in import_graph().items() for target in sorted(targets)
              if layer_of(target) > layer_of(module)]
    assert upward == []


def test_no_import_cycle() -> None:
    graph = import_graph()
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in path:
                cycles.append(" -> ".join([*path[path.index(target):], target]))
            elif len(path) < len(graph):
                visit(target, [*path, target])

    for module in graph:
        visit(module, [module])
    assert cycles == []


if __name__ == "__main__":
    for module, targets in sorted(import_graph(Path(sys.argv[1]) if len(sys.argv) > 1
                                               else ROOT).items()):
        print(f"{module}: {', '.join(sorted(targets)) or '-'}")
