"""The layout the README draws: sub-packages without import cycles, modules of a readable size, every table
seen by Alembic. Imports inside functions count: a cycle hidden in a function is still a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("importer", "schemas", "ui", "views")
MAX_LINES = 620  # "about 600"
TEMPORARY_TABLES = {"import_stage"}  # the loader's per-connection TEMP table, never migrated


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    found["app"] = ROOT / "app.py"
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports, at any depth of its code (package __init__s excluded)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        type_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and _is_type_checking(block.test)
                     for stmt in block.body for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue  # `if TYPE_CHECKING:` imports are never executed
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            for target in targets:
                if target in modules and target != name and modules[target].name != "__init__.py":
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_checker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_engine_never_imports_the_dashboard() -> None:
    graph = import_graph()
    leaks = {m: sorted(t for t in targets if t.split(".")[0] in ("ui", "views", "app"))
             for m, targets in graph.items() if m.startswith(("importer", "schemas"))}
    assert {m: t for m, t in leaks.items() if t} == {}


def test_no_module_is_over_about_600_lines() -> None:
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_every_package_of_the_engine_says_what_it_holds() -> None:
    for init in (ROOT / "importer").glob("*/__init__.py"):
        assert ast.get_docstring(ast.parse(init.read_text())), init


def test_alembic_sees_every_table() -> None:
    """migrations/env.py's metadata is importer.database.schema's; every table the code defines is in it."""
    from importer.database import schema

    defined = set()
    for path in (ROOT / "importer").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "Table"
                    and node.args and isinstance(node.args[0], ast.Constant)
                    and not str(node.args[0].value).startswith("_")):
                defined.add(node.args[0].value)
    assert defined - TEMPORARY_TABLES <= set(schema.metadata.tables), defined - set(schema.metadata.tables)
    assert "from importer.database.schema import" in (ROOT / "migrations" / "env.py").read_text()
