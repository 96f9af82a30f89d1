"""Names a docstring of the engine's API gives as dotted paths (importer.database.claim.adopts) exist: a
function that moved leaves no docstring pointing at where it was."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOTTED = re.compile(r"\b(importer(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def docstring_names(source: str) -> set[str]:
    """The dotted importer.… names in a module's docstrings (the module's, its classes' and functions')."""
    tree = ast.parse(source)
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))]
    return {m.rstrip(".") for node in nodes for m in DOTTED.findall(ast.get_docstring(node) or "")}


def resolves(dotted: str) -> bool:
    """Whether a dotted name is a module, or an attribute (at any depth) of the longest module it starts with."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_the_checker_finds_a_name_that_moved() -> None:
    names = docstring_names('def f():\n    """Claims (importer.database.loader._Loader.claim)."""\n')
    assert names == {"importer.database.loader._Loader.claim"}
    assert not resolves("importer.database.loader._Loader.claim")
    assert resolves("importer.database.claim.adopts") and resolves("importer.database")


def test_the_api_docstrings_name_what_exists() -> None:
    names = docstring_names((ROOT / "importer" / "api.py").read_text())
    assert names and sorted(n for n in names if not resolves(n)) == []
