"""The package's imports run one way: handlers → services (sessions, notebook, governance) → engine, store,
models and settings, and nothing but the package's entry points imports the app.

Read from the source (every ``from .`` import, those in functions and ``TYPE_CHECKING`` blocks too), as a
newcomer reads it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "dsagent_ext"
ENTRY_POINTS = {"dsagent_ext", "dsagent_ext.serve"}  # the extension points and ``dsagent serve``


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def relative_imports(path: Path) -> set[str]:
    """The package modules ``path`` imports (``from .x import y`` counts as ``.x`` and ``.x.y``)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
        found.add(target)
        found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): relative_imports(p) & modules for p in paths}


def top(module: str) -> str:
    """The package part a module belongs to: ``sessions``, ``handlers``, ``app``..."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_only_the_entry_points_import_the_app():
    importers = {module for module, imports in graph().items() if "dsagent_ext.app" in imports}
    assert importers <= ENTRY_POINTS


def test_packages_import_one_way():
    """No cycle between the package's parts (the root ``__init__`` only hands the app to Jupyter)."""
    edges: dict[str, set[str]] = {}
    for module, imports in graph().items():
        if module == "dsagent_ext":
            continue
        edges.setdefault(top(module), set()).update(top(i) for i in imports if i != "dsagent_ext" and top(i) != top(module))
    seen: dict[str, str] = {}  # part -> "open" while being visited, "done" after

    def visit(part: str, path: list[str]) -> None:
        if seen.get(part) == "open":
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(part):], part]))
        if seen.get(part) == "done":
            return
        seen[part] = "open"
        for other in sorted(edges.get(part, ())):
            visit(other, [*path, part])
        seen[part] = "done"

    for part in sorted(edges):
        visit(part, [])
    below = {"engine", "store", "models", "settings"}
    for part in below:
        assert not edges.get(part, set()) & {"handlers", "sessions", "notebook", "governance", "app"}, part
