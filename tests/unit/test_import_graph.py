"""The package's imports point one way: no module imports, directly or through others, a
module that imports it back (lazy imports inside functions and ``TYPE_CHECKING`` imports
count too), and the core never imports an optional layer."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import yeastar_csss_async

PACKAGE = "yeastar_csss_async"
ROOT = Path(yeastar_csss_async.__file__).parent
OPTIONAL_LAYERS = ("cli", "exports._xlsx", "redis", "sync", "tasks", "pytest_plugin")
"""What the core (``import yeastar_csss_async``) must not import: the optional layers, and
the CLI above them."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in ROOT.rglob("*.py")}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """Every module of the package that module ``name`` imports, anywhere in its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            # ``from pkg import name`` imports the submodule pkg.name when there is one
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                while target not in modules:  # a name inside a module: the module
                    target = target.rpartition(".")[0]
                if target != name:
                    yield target


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: set(_imports(name, path, modules)) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm),
    ignoring imports of a package's own ``__init__`` by its submodules (Python runs a
    package's ``__init__`` before any of its submodules, so that edge is not a choice)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def edges(node: str) -> set[str]:
        return {target for target in graph[node] if not node.startswith(target + ".")}

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges(node):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "p": set(), "p.x": {"p"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_the_core_imports_no_optional_layer() -> None:
    graph = _graph()
    optional = {f"{PACKAGE}.{layer}" for layer in OPTIONAL_LAYERS}

    def is_optional(name: str) -> bool:
        return any(name == layer or name.startswith(layer + ".") for layer in optional)

    reached: set[str] = set()
    todo = [PACKAGE]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        todo += [target for target in graph[name] if not is_optional(target)]
        offending = sorted(target for target in graph[name] if is_optional(target))
        assert not offending, f"{name} (imported by the core) imports {offending}"
    assert f"{PACKAGE}._lists" in reached  # the walk really followed the core's imports
