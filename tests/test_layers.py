"""The layering of docs/architecture.md, checked on every module's imports.

Each module of ``agent``, ``memory``, ``skills`` and ``tui`` is parsed with ``ast``; its imports
are every ``import``/``from ... import`` anywhere in the file (top level, inside functions, under
``TYPE_CHECKING``), every ``importlib.import_module("...")`` with a literal name, and every
module name written as a string in a module-level assignment (the lazy ``_LAZY`` maps and the
CLI's command list). The test fails on an import cycle between modules, on a cycle between
areas (a top-level package, or a direct part of ``agent``), on an import that goes up the layer
order, and on a module that belongs to no layer (a new folder must be placed in a layer here
and in docs/architecture.md).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agent", "memory", "skills", "tui")

# Lowest first. A module belongs to the layer of its longest matching name ("agent" matches
# only the package's own __init__: the public facade).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("agent.errors", "agent.options", "agent.turn", "agent.paths", "agent.files", "agent.sqlite",
              "agent.normalize", "agent.prompts", "agent.toolcalls", "agent.lazy")),
    ("models", ("agent.models", "agent.backends")),
    ("knowledge", ("memory", "agent.understand")),
    ("skills", ("skills",)),
    ("dialogue", ("agent.dialogue", "agent.config")),
    ("faces", ("agent.server", "tui", "agent")),
    ("toolbox", ("agent.toolbox",)),
    ("cli", ("agent.cli",)),
)


def find_modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the packages."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The module of ours that importing ``name`` runs (``a.b.func`` -> ``a.b``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported_names(tree: ast.Module, module: str, is_package: bool, modules: dict[str, Path]) -> dict[str, int]:
    package = module if is_package else module.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            # `from pkg import sub` imports the submodule; `from pkg import name` only pkg
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"):
            names = [str(node.args[0].value)]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node in tree.body and node.value is not None:
            names = [c.value for c in ast.walk(node.value)
                     if isinstance(c, ast.Constant) and isinstance(c.value, str) and c.value in modules]
        for name in names:
            owner = _owner(name, modules)
            if owner is not None and owner != module:
                found.setdefault(owner, node.lineno)
    return found


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, dict[str, int]]:
    """Module -> {module it imports: line of the first such import}, for our modules only."""
    modules = find_modules(root, packages)
    return {name: _imported_names(ast.parse(path.read_text(encoding="utf-8")), name, path.name == "__init__.py",
                                  modules)
            for name, path in modules.items()}


def area(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "agent" and len(parts) > 1 else parts[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (prefix != "agent" and module.startswith(prefix + "."))
            if matches and (best is None or len(prefix) > best[1]):
                best = (rank, len(prefix))
    return None if best is None else best[0]


@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, int]]:
    return import_graph(ROOT)


def test_no_module_imports_another_in_a_cycle(graph):
    assert cycles({m: set(targets) for m, targets in graph.items()}) == []


def test_no_area_depends_on_another_in_a_cycle(graph):
    areas: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        areas[area(module)].update(area(t) for t in targets if area(t) != area(module))
    assert cycles(areas) == []


def test_every_module_has_a_layer(graph):
    assert [m for m in graph if layer_of(m) is None] == []


def test_no_import_goes_up_the_layers(graph):
    upward = []
    for module, targets in graph.items():
        for target, line in targets.items():
            low, high = layer_of(module), layer_of(target)
            if low is not None and high is not None and high > low:
                upward.append(f"{graph_file(module)}:{line}: {module} ({LAYERS[low][0]}) imports "
                              f"{target} ({LAYERS[high][0]})")
    assert upward == []


def graph_file(module: str) -> str:
    path = find_modules(ROOT)[module]
    return str(path.relative_to(ROOT))


def test_the_checks_find_what_they_look_for(tmp_path):
    """The walker sees imports inside functions, relative imports and lazy maps; the cycle
    finder reports a cycle that only a function-level import closes."""
    pkg = tmp_path / "agent"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text('_LAZY = {"Thing": "agent.dialogue"}\n')
    (pkg / "errors.py").write_text("")
    (pkg / "models" / "__init__.py").write_text("")
    (pkg / "models" / "loader.py").write_text("from ..errors import *\n\ndef f():\n    from agent import dialogue\n")
    (pkg / "dialogue.py").write_text("import agent.models.loader\nimport importlib\n"
                                     "importlib.import_module('agent.errors')\n")
    found = import_graph(tmp_path, ("agent",))
    assert set(found["agent.models.loader"]) == {"agent.errors", "agent.dialogue"}
    assert set(found["agent"]) == {"agent.dialogue"}
    assert set(found["agent.dialogue"]) == {"agent.models.loader", "agent.errors"}
    assert cycles({m: set(t) for m, t in found.items()}) == [["agent.dialogue", "agent.models.loader"]]
    assert layer_of("agent.models.loader") < layer_of("agent.dialogue")
    assert layer_of("agent.nowhere") is None and layer_of("agent") == 5
