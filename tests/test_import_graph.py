"""No import cycle inside src/attnwidget: the imports of every module, read from its source, form no loop.

Function-level and `if TYPE_CHECKING:` imports count as edges too: a lazy import hides a loop
from Python at import time, not from the reader who has to keep both modules in mind.
"""

from __future__ import annotations

import ast
import pathlib

PACKAGE = "attnwidget"
SOURCE = pathlib.Path(__file__).parents[1] / "src" / PACKAGE


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(SOURCE.rglob("*.py"))}


def imported_modules(name: str, path: pathlib.Path) -> set[str]:
    """The attnwidget modules `name` imports anywhere in its source, resolved to module names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - (node.level - 1)], *([base] if base else [])])
            # `from . import wire` imports the module wire; `from .wire import chunk_key` a name in wire;
            # `from attnwidget import AttentionWidget` a name in the package's __init__.
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(module for module in map(_known_module, targets) if module not in (None, name))
    return found


def _known_module(dotted: str) -> str | None:
    """The longest prefix of `dotted` that is a module of the package."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in MODULES:
            return candidate
    return None


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == "open":
                return stack[stack.index(successor):] + [successor]
            if successor not in state:
                cycle = visit(successor)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def imports_of(name: str) -> set[str]:
    return imported_modules(name, MODULES[name])


def test_the_reader_resolves_every_kind_of_import():
    assert "attnwidget.wire" in imports_of("attnwidget.widget")  # from . import wire
    assert "attnwidget.image" in imports_of("attnwidget.headless")  # from .image import image_format
    assert "attnwidget.widget" in imports_of("attnwidget.headless")  # under if TYPE_CHECKING
    assert "attnwidget.headless" in imports_of("attnwidget.cli")  # inside a function
    assert "attnwidget.widget" in imports_of("attnwidget.bertviz._output")  # from ..widget import


def test_the_cycle_finder_names_the_loop():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_src_attnwidget_has_no_import_cycle():
    cycle = find_cycle({name: imported_modules(name, path) for name, path in MODULES.items()})
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_test_module_imports_another():
    """Shared test helpers live in conftest.py (or a helper module not named test_*): a test module imported by
    another runs its module-level setup twice and ties the two files' fixtures together."""
    roots = [pathlib.Path(__file__).parent, pathlib.Path(__file__).parents[1] / "ui-tests"]
    offenders = []
    for path in sorted(p for root in roots for p in root.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            offenders += [f"{path.parent.name}/{path.name} imports {name}" for name in names if name.startswith("test_")]
    assert not offenders, "\n".join(offenders)
