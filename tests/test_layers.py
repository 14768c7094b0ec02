"""The package's layers: no runtime import cycle, contracts without implementations, no sqlite3
at import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "eventflow"


def _module_name(path: Path) -> str:
    parts = ["eventflow", *path.relative_to(PACKAGE).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: not in functions, not TYPE_CHECKING."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.append(node)
            elif isinstance(node, ast.If):
                if not _is_type_checking(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.With):
                visit(node.body)
            # classes run at import too; functions do not
            elif isinstance(node, ast.ClassDef):
                visit(node.body)

    visit(tree.body)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the eventflow modules it imports at run time."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in _module_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    origin = ".".join([*base, node.module] if node.module else base)
                else:
                    origin = node.module or ""
                # "from . import _registry" imports a submodule; "from ._app import App" a name
                targets = [origin] + [f"{origin}.{alias.name}" for alias in node.names]
            for target in targets:
                # a module's own packages are initialised before it in any case
                if target in modules and not name.startswith(f"{target}.") and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def test_the_graph_sees_module_level_imports() -> None:
    graph = import_graph()
    # the check below would pass vacuously on an empty graph
    assert "eventflow._contracts" in graph["eventflow.sinks"]
    assert "eventflow._app" in graph["eventflow"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_runtime_import_cycle() -> None:
    assert _cycles(import_graph()) == []


def test_contracts_import_no_eventflow_module_but_the_error_root() -> None:
    graph = import_graph()
    # the error tree's root is a leaf: the contracts' SinkRejected derives from it
    assert graph["eventflow._contracts"] <= {"eventflow._errors"}
    assert graph["eventflow._errors"] == set()


def test_the_core_imports_no_adapter() -> None:
    graph = import_graph()
    core = [m for m in graph if m.startswith("eventflow._") and not m.startswith("eventflow._cli")]
    for module in core:
        public = {t for t in graph[module] if not t.split(".")[1].startswith("_")}
        assert not {t for t in public if t.startswith(("eventflow.aws", "eventflow.http"))}, module


def test_import_eventflow_loads_no_sqlite3() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import eventflow, sys; print('sqlite3' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "False"


def test_the_sqlite_implementations_are_still_importable_by_their_public_paths() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from eventflow.stores import SQLiteStore; "
            "from eventflow.queues import SQLiteQueue; "
            "print(SQLiteQueue.__module__, 'sqlite3' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["eventflow.queues", "True"]


def _all_imports(path: Path) -> set[str]:
    """The eventflow modules ``path`` imports anywhere, at module level or in a function."""
    package = _module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            found.add(origin)
            found.update(f"{origin}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("eventflow")}


def test_http_imports_nothing_private_from_aws() -> None:
    imported = {path.name: _all_imports(path) for path in sorted((PACKAGE / "http").glob("*.py"))}
    # the check would pass vacuously if the scan missed the lazy import of eventflow.aws
    assert any(m.startswith("eventflow.aws") for m in imported["_lambda_api.py"])
    private = {
        name: sorted(m for m in modules if m.startswith("eventflow.aws._"))
        for name, modules in imported.items()
    }
    assert private == {name: [] for name in imported}


def test_one_asgi_toolkit() -> None:
    # the ASGI messages that body reading, lifespan handling and replies speak: only
    # eventflow._asgi may spell them, so no endpoint grows a second copy of that plumbing
    spelled = {
        marker: sorted(
            _module_name(path)
            for path in PACKAGE.rglob("*.py")
            if f'"{marker}"' in path.read_text(encoding="utf-8")
        )
        for marker in ("http.disconnect", "http.response.start", "lifespan.startup", "more_body")
    }
    assert spelled == {marker: ["eventflow._asgi"] for marker in spelled}


def test_the_core_and_the_cli_import_neither_prometheus_nor_opentelemetry() -> None:
    # the metrics and tracing extras are optional: only eventflow.metrics / .tracing need them
    code = (
        "import sys, eventflow, eventflow.queues, eventflow.aws, eventflow._cli; "
        "print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('prometheus_client', 'opentelemetry')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
    graph = import_graph()
    assert "eventflow.metrics" not in {t for m, ts in graph.items() for t in ts if m != "eventflow"}
