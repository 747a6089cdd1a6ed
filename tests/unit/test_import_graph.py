"""The packages' import graph, read from the source (ast): no cycles, and tests import
helpers only from tests/support, never another test module.

Every import counts, at module level or inside a function (a late import hides a
cycle, it does not remove one), `if TYPE_CHECKING:` ones too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# (source root, top-level package): the four distributions built from this repository.
PACKAGES = (
    ("operator", "portico"),
    ("runtime", "portico_runtime"),
    ("standin", "portico_standin"),
    ("devtools", "portico_dev"),
)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(roots: list[tuple[Path, str]]) -> dict[str, Path]:
    found = {}
    for root, package in roots:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(root, path)] = path
    return found


def imported(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The modules of KNOWN that the module NAME (at PATH) imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    yield f"{base}.{alias.name}"  # a submodule
                elif base in known:
                    yield base


def graph(known: dict[str, Path]) -> dict[str, set[str]]:
    return {name: set(imported(name, path, known)) - {name} for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (A, B, ..., A) per strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
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
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [_path_through(component, edges) for component in components]


def _path_through(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest cycle from the component's first module back to itself (BFS)."""
    start, members = component[0], set(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(edges[node] & members):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if nxt not in parents:
                    parents[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def test_the_cycle_finder_finds_function_level_and_relative_imports(tmp_path: Path) -> None:
    """The check itself, on a package made for it: it must see what the real one hides."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def late():\n    from .. import a\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    edges = graph(modules([(tmp_path, "pkg")]))
    assert edges["pkg.a"] == {"pkg.sub.b"} and edges["pkg.sub.b"] == {"pkg.a"}
    assert cycles(edges) == [["pkg.a", "pkg.sub.b", "pkg.a"]]


def test_no_import_cycles_between_modules() -> None:
    edges = graph(modules([(ROOT / src, package) for src, package in PACKAGES]))
    found = cycles(edges)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_operator_imports_nothing_of_the_other_distributions() -> None:
    """The operator's wheel and image hold `portico` alone; `portico dev` reaches its CLI
    through an entry point, never an import."""
    known = modules([(ROOT / src, package) for src, package in PACKAGES])
    for name, targets in graph(known).items():
        top = name.split(".")[0]
        others = {t for t in targets if t.split(".")[0] != top}
        assert not others, f"{name} imports {sorted(others)}"


def test_tests_import_helpers_only_from_tests_support() -> None:
    """No test module (or conftest) is imported as a library: helpers live in tests/support."""
    tests = ROOT / "tests"
    known = modules([(ROOT, "tests")])
    offending = []
    for name, targets in graph(known).items():
        for target in targets:
            leaf = target.rsplit(".", 1)[-1]
            if leaf.startswith("test_") or leaf == "conftest":
                offending.append(f"{name} imports {target}")
    assert known and (tests / "support" / "__init__.py").is_file()
    assert not offending, "\n".join(offending)
