"""The import graph of the shipped packages has no cycles and no upward arrows.

Imports are read from the source (ast), module to module, including imports inside
functions; imports under ``if TYPE_CHECKING:`` are left out (they never run). A cycle is
reported with its modules, so the fix is to move what both need to the lower one."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.paths import ROOT

PACKAGES = ("focus", "ccmp_server", "mediactrl")

#: Layers: a package may import only those listed for it (besides itself and the stdlib).
ALLOWED = {
    "focus.sip": set(),  # the SIP stack is a library: nothing else of the project
    "focus.xcon": set(),
    "mediactrl": {"focus.sip", "focus.xcon.safexml"},  # the one hardened XML parser
    "focus.core": {"focus.xcon"},
    "focus.eventpkg": {"focus.xcon", "focus.core", "focus.sip"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, modules: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for branch in node.orelse:
                visit(branch)
            return
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import submodule`` depends on the submodule; ``from mod import name``
            # on the module.
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        for imported in names:
            # the longest prefix that is one of our modules
            name = imported
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != me:
                found.add(name)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    modules = {_module_name(p) for p in files}
    return {_module_name(p): _imports(p, modules) for p in files}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def strong(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return found


def _package_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Cycles between the project's sub-packages (focus.calls <-> focus.mediaplan, ...)."""

    def package(name: str) -> str:
        parts = name.split(".")
        return ".".join(parts[:2]) if parts[0] == "focus" else parts[0]

    packages: dict[str, set[str]] = {}
    for v, ws in edges.items():
        packages.setdefault(package(v), set()).update(
            package(w) for w in ws if package(w) != package(v)
        )
    return _cycles(packages)


def test_no_module_imports_itself_through_others() -> None:
    assert _cycles(graph()) == []


def test_no_package_imports_itself_through_others() -> None:
    assert _package_cycles(graph()) == []


def test_lower_layers_import_nothing_above_them() -> None:
    wrong = []
    for module, imported in graph().items():
        for layer, allowed in ALLOWED.items():
            if module == layer or module.startswith(layer + "."):
                for name in imported:
                    own = name == layer or name.startswith(layer + ".")
                    if not own and not any(name == a or name.startswith(a + ".") for a in allowed):
                        wrong.append(f"{module} -> {name}")
    assert wrong == []
