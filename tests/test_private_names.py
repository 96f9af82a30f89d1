"""No dashboard module (ui/, views/, app.py) calls another module's private (_underscored) function or reads
its private names: what one module offers another has a public name. (The engine's packages are not held to
this here: several of their modules share private helpers with a sibling.)"""

from __future__ import annotations

import ast

from tests.test_layout import _modules

DASHBOARD = ("ui", "views", "app")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def foreign_private_names(module: str, source: str, modules: set[str]) -> list[str]:
    """`other._name` and `from other import _name` in `source` (the module `module`), where other is another
    project module."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update({alias.asname or alias.name: alias.name for alias in node.names if alias.name in modules})
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                if target in modules:
                    aliases[alias.asname or alias.name] = target
                elif node.module in modules and node.module != module and _private(alias.name):
                    found.append(f"{node.module}.{alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            parts, value = [], node.value
            while isinstance(value, ast.Attribute):
                parts.append(value.attr)
                value = value.value
            if not isinstance(value, ast.Name):
                continue
            dotted = ".".join([aliases.get(value.id, value.id), *reversed(parts)])
            if dotted in modules and dotted != module:
                found.append(f"{dotted}.{node.attr}")
    return found


def test_the_checker_finds_a_foreign_private_name() -> None:
    modules = {"ui.a", "ui.b", "ui"}
    assert foreign_private_names("ui.a", "from ui import b\nb._keep(1)\n", modules) == ["ui.b._keep"]
    assert foreign_private_names("ui.a", "import ui.b as other\nother._keep(1)\n", modules) == ["ui.b._keep"]
    assert foreign_private_names("ui.a", "from ui.b import _keep\n", modules) == ["ui.b._keep"]
    assert foreign_private_names("ui.a", "from ui import b\nb.keep(1)\n_own()\n", modules) == []


def test_no_dashboard_module_uses_another_modules_private_names() -> None:
    modules = _modules()
    found = {name: foreign_private_names(name, path.read_text(), set(modules)) for name, path in modules.items()
             if name.split(".")[0] in DASHBOARD}
    assert {name: names for name, names in found.items() if names} == {}
