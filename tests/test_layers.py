"""The package's layers, read from the code with `ast`: imports point down the layer order
(docs/architecture.md), no module imports itself back through others, a concrete backend is
reached only through the registry, and no code outside backends/ tests a backend's name."""

import ast
from pathlib import Path

from slurmsky.backends import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "slurmsky"

# Lowest first. A module may import its own layer and those below it.
LAYERS = (
    ("runtime", ("slurmsky.runtime",)),
    ("base", ("slurmsky", "slurmsky.errors", "slurmsky.record", "slurmsky.display")),
    ("backend interface", ("slurmsky.backends",)),
    ("config", ("slurmsky.config",)),
    ("parse", ("slurmsky.parse",)),
    ("plan", ("slurmsky.plan",)),
    ("core", ("slurmsky.core",)),
    ("backends", tuple(REGISTRY.values())),
    ("render", ("slurmsky.render",)),
    ("commands", ("slurmsky.commands",)),
)


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> int:
    """The index in LAYERS of the longest prefix naming the module's layer."""
    best, rank = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    assert rank >= 0, f"{module} is in no layer"
    return rank


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(module: str) -> set[str]:
    """The package's modules `module` imports, at any depth of its code, except under
    `if TYPE_CHECKING:` (annotations only)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking(node):
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m in MODULES and m != module}


GRAPH = {module: imports(module) for module in MODULES}


def test_every_import_points_down_the_layers():
    wrong = [
        f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
        for m, deps in sorted(GRAPH.items())
        for d in sorted(deps)
        if layer_of(d) > layer_of(m)
    ]
    assert wrong == []


def test_the_import_graph_has_no_cycle():
    """Tarjan's strongly connected components: each must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            connect(v)
    assert cycles == []


def test_a_concrete_backend_is_reached_only_through_the_registry():
    wrong = [
        f"{m} imports {d}"
        for m, deps in sorted(GRAPH.items())
        for d in sorted(deps)
        for package in REGISTRY.values()
        if (d == package or d.startswith(package + "."))
        and not (m == package or m.startswith(package + "."))
    ]
    assert wrong == []


def test_no_backend_name_is_tested_outside_the_backends():
    """`cfg.backend == "sky"` and the like: callers ask for a capability instead."""
    found = []
    for module, path in sorted(MODULES.items()):
        if module == "slurmsky.backends" or module.startswith("slurmsky.backends."):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                constants = [
                    c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)
                ]
                if any(value in REGISTRY for value in constants):
                    found.append(f"{module}:{node.lineno}: {ast.unparse(node)}")
    assert found == []


def test_only_the_sky_client_imports_skypilot():
    """SkyClient is the one boundary with SkyPilot's SDK (tests swap it for one fake)."""
    found = []
    for module, path in sorted(MODULES.items()):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            if any(n == "sky" or n.startswith("sky.") for n in names):
                found.append(f"{module}:{node.lineno}")
    assert found and {f.split(":")[0] for f in found} == {"slurmsky.backends.sky.client"}


def test_the_checks_see_what_they_check():
    """The graph is read from the real tree (a broken reader would pass every test above)."""
    assert "slurmsky.core.scheduler" in GRAPH["slurmsky.core.daemon"]
    assert "slurmsky.backends" in GRAPH["slurmsky.core.scheduler"]
    assert "slurmsky.core.state" in GRAPH["slurmsky.backends.sky.executor"]
    assert layer_of("slurmsky.backends.sky.sync") > layer_of("slurmsky.core.state")
    assert layer_of("slurmsky.backends") < layer_of("slurmsky.config")
