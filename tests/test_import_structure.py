"""The import structure of ``src/rtstereo``: no import cycle among its modules, and no library module that reads the
command line's (``rtstereo.cli``). Read from the source with ``ast``, nothing imported, and once for the tests that
read it (about a second on 2 cores: each test parsed the package again).

An import inside a function counts as much as one at the top of a module: one that is there only to dodge a cycle
is the cycle still, met at run time. Imports under ``if TYPE_CHECKING:`` do not count (they never run).
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Deferred imports (inside a function) that close a cycle and are kept, with why. Each is (importer, imported).
KEPT_CYCLE_EDGES = {
    # Plugin registration: sinks.pointcloud adds the 3D formats to sinks.files' registry (register_format); the
    # registry imports it on first meeting a name it does not know, so that Python callers find them too.
    ("rtstereo.sinks.files", "rtstereo.sinks.pointcloud"): "registers the 3D formats",
    # A dispatcher in the base module: the two backends of other tools' ONNX files subclass runtime.onnx's
    # OnnxRuntimeBackend and use its contract; runtime.onnx picks them by the file's graph. Breaking it means
    # splitting runtime/onnx.py (read_contract, _backend, load_onnx into their own module).
    ("rtstereo.runtime.onnx", "rtstereo.runtime.public_onnx"): "picks the public CREStereo backend",
    ("rtstereo.runtime.onnx", "rtstereo.runtime.rt_stereo_onnx"): "picks the RT-Stereo backend",
    # The same shape: the process worker subclasses OnlineAdapter; online.py's factory picks it by --set worker.
    ("rtstereo.train.online", "rtstereo.train.online_process"): "picks the process worker",
    # api.load on --backend onnxruntime exports a network on demand (needs torch: deferred for that); the exporter
    # builds the network with api's weight loading (load_weights, warn_unread_settings, changed_network_error).
    ("rtstereo.export.onnx_export", "rtstereo.api"): "builds networks with api's weight loading",
    # eval's JSON records the machine as bench's does, with bench's machine_info (bench.py's "Where it ran"): that
    # belongs in a module of its own, which would split bench.py; bench scores its rows with eval.evaluate.
    ("rtstereo.eval", "rtstereo.bench"): "records the machine with bench.machine_info",
}

# Modules outside rtstereo.cli that may import it, with why.
KEPT_CLI_IMPORTERS = {
    "rtstereo.__main__": "`python -m rtstereo` is the command line",
}


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module of the package: dotted name -> (file, is a package's __init__)."""
    modules = {}
    for path in (SRC / "rtstereo").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def _imported(name: str, is_package: bool, node: ast.Import | ast.ImportFrom, modules: dict) -> set[str]:
    """The package's modules that an import statement of module ``name`` imports."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        if node.level:
            base = name.split(".")[: len(name.split(".")) - node.level + is_package]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        # `from . import pointcloud` imports a module; `from .files import clashing_names` a name of one
        targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module for alias in node.names]
    found = set()
    for target in targets:
        while target and target not in modules:  # `import rtstereo.io.images.x`: the deepest module that exists
            target = target.rpartition(".")[0]
        if target.startswith("rtstereo") and target != name:
            found.add(target)
    return found


def _imports_of(name: str, is_package: bool, tree: ast.AST, modules: dict) -> dict[str, int]:
    """The package's modules that module ``name`` imports -> the line of the first such import."""
    found: dict[str, int] = {}

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case)):
                continue  # an expression holds no import statement: not walked (most of the tree)
            if isinstance(child, ast.If) and ast.unparse(child.test) in ("TYPE_CHECKING", "not TYPE_CHECKING"):
                runs = child.orelse if ast.unparse(child.test) == "TYPE_CHECKING" else child.body
                for statement in runs:
                    visit(ast.Module(body=[statement], type_ignores=[]))
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in _imported(name, is_package, child, modules):
                    found.setdefault(target, child.lineno)
            visit(child)

    visit(tree)
    return found


def _imports() -> dict[str, dict[str, int]]:
    """importer -> {imported: the line of its first import}, over top-level and deferred imports alike (a copy of
    the graph read once, which a test may change)."""
    return {importer: dict(imported) for importer, imported in _read_imports().items()}


@functools.cache
def _read_imports() -> dict[str, dict[str, int]]:
    modules = _modules()
    return {
        name: _imports_of(name, is_package, ast.parse(path.read_text(encoding="utf-8")), modules)
        for name, (path, is_package) in modules.items()
    }


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(graph[successor])))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def test_the_modules_import_one_another_without_a_cycle():
    graph = _imports()
    for importer, imported in KEPT_CYCLE_EDGES:
        graph[importer].pop(imported)
    cycles = _cycles(graph)
    shown = [
        "; ".join(f"{a} -> {b} (line {graph[a][b]})" for a in cycle for b in sorted(graph[a]) if b in cycle)
        for cycle in cycles
    ]
    assert not cycles, "import cycles (move the shared piece to the module it belongs to):\n" + "\n".join(shown)


def test_every_kept_cycle_edge_is_still_an_import():
    graph = _imports()
    gone = [edge for edge in KEPT_CYCLE_EDGES if edge[1] not in graph[edge[0]]]
    assert not gone, f"no longer imported, take them off KEPT_CYCLE_EDGES: {gone}"


def test_no_library_module_imports_the_command_line():
    graph = _imports()
    wrong = [
        f"{importer} -> {imported} (line {line})"
        for importer, imports in sorted(graph.items())
        if not importer.startswith("rtstereo.cli") and importer not in KEPT_CLI_IMPORTERS
        for imported, line in sorted(imports.items())
        if imported == "rtstereo.cli" or imported.startswith("rtstereo.cli.")
    ]
    assert not wrong, "library modules that import rtstereo.cli (library code raises, the CLI reports):\n" + "\n".join(
        wrong
    )


@pytest.mark.parametrize(
    "code, imported",
    [
        ("import rtstereo.cli.common\n", {"rtstereo.cli.common"}),
        ("def f():\n    from .cli.common import parse_size_hw\n", {"rtstereo.cli.common"}),
        ("class A:\n    def f(self):\n        from .sinks import files\n", {"rtstereo.sinks.files"}),
        ("from . import text as t, __version__\n", {"rtstereo.text", "rtstereo"}),
        ("from .sources.pairs import frame_order\n", {"rtstereo.sources.pairs"}),
        ("if TYPE_CHECKING:\n    from .api import load\nelse:\n    from .geometry import x\n", {"rtstereo.geometry"}),
        ("if not TYPE_CHECKING:\n    def f():\n        from .api import load\n", {"rtstereo.api"}),
    ],
)
def test_the_reader_sees_each_kind_of_import(code, imported):
    assert set(_imports_of("rtstereo.bench", False, ast.parse(code), _modules())) == imported


def test_a_cycle_is_found_and_a_chain_is_not():
    assert _cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {}}) == []


def test_importing_the_package_loads_no_heavy_library():
    """``import rtstereo`` stays quick: NumPy, OpenCV, ONNX Runtime and torch load on the first use of a name."""
    code = (
        "import sys, rtstereo; "
        "print(sorted(m for m in ('numpy', 'cv2', 'onnxruntime', 'torch', 'rtstereo.api', 'rtstereo.models') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
