"""The code's shape (DESIGN.md): imports only go down the layers cli -> engine -> models,
data, losses, metrics -> config, classes, errors; no import cycle; the functions of
engine/ and cli/ are short enough to hold in one's head."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "semseg"

# Each module's layer, by its longest matching prefix; an import may only reach a module
# of the same layer or a lower one.
LAYERS = {
    "semseg._version": 0,
    "semseg.errors": 0,
    "semseg.files": 0,
    "semseg.plugins": 0,
    "semseg.config": 0,
    "semseg.config_docs": 0,
    "semseg.classes": 0,
    "semseg.registry": 0,
    "semseg.console": 0,
    "semseg.models": 1,
    "semseg.data": 1,
    "semseg.losses": 1,
    "semseg.metrics": 1,
    "semseg.boundary": 1,
    "semseg.viz": 1,
    "semseg.report": 1,
    "semseg.engine": 2,
    "semseg.deploy": 2,
    "semseg.cli": 3,
    "semseg.__main__": 4,
    "semseg": 4,  # the package's public API
}
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> int:
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[prefix]


def _resolve(module: str, name: str | None) -> str:
    """`from module import name`: the submodule when `name` is one, else the module."""
    candidate = f"{module}.{name}" if name else module
    return candidate if candidate in MODULES else module


def _executed_imports(tree: ast.Module) -> list[ast.stmt]:
    """Import statements anywhere in the module (functions too), except under
    `if TYPE_CHECKING:`, which never runs."""
    skipped = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skipped
    ]


def semseg_imports(module: str) -> set[str]:
    found = set()
    for node in _executed_imports(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "semseg"}
        elif node.module and node.module.split(".")[0] == "semseg":
            found |= {_resolve(node.module, alias.name) for alias in node.names}
    return found - {module}


GRAPH = {module: semseg_imports(module) for module in MODULES}


def test_every_module_has_a_layer() -> None:
    """A new top-level module must be placed in LAYERS (else it would count as the API)."""
    unplaced = [
        module
        for module in MODULES
        if module != "semseg"
        and not any(module.startswith(p + ".") or module == p for p in LAYERS if p != "semseg")
    ]
    assert not unplaced


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_layers(module: str) -> None:
    upward = sorted(other for other in GRAPH[module] if _layer(other) > _layer(module))
    assert not upward, f"{module} (layer {_layer(module)}) imports higher layers: {upward}"


def test_lower_layers_never_reach_engine_or_cli() -> None:
    for module, imported in GRAPH.items():
        if module.startswith(("semseg.models", "semseg.data", "semseg.losses", "semseg.metrics")):
            assert not {m for m in imported if m.startswith(("semseg.engine", "semseg.cli"))}
        if module.startswith("semseg.engine"):
            assert not {m for m in imported if m.startswith("semseg.cli")}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_no_import_cycles() -> None:
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if m.startswith(("semseg.engine", "semseg.cli")))
)
def test_engine_and_cli_functions_are_short(module: str) -> None:
    tree = ast.parse(MODULES[module].read_text())
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{module}: {', '.join(long)}"
