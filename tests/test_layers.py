"""dagrad's modules form layers that only point down, with no import cycle.

Every module under dagrad/ is imported (a cycle among top-level imports fails right there), then its
imports are read from its source, function-level (lazy) ones included, and checked against the floors
below: a module may import its own floor's and lower floors' modules, never a higher floor's. Among the
components on one floor, a package may not import a sibling package (the engine combines them). Nor may
any module reach itself through its imports, function-level ones included (`test_no_import_cycle_between_modules`)."""

from __future__ import annotations

import ast
import functools
import importlib
import pkgutil
from pathlib import Path

import dagrad

ROOT = Path(dagrad.__file__).resolve().parent

#: floor -> units: a component package (its submodules share its floor), a root module, or a module of one
#: of the grouping packages (utils/, config/, records/, run/), whose modules sit on floors of their own
FLOORS = {
    0: ["version", "registry", "utils.errors", "utils.plain", "utils.seeding", "utils.atomic", "utils.notices",
        "utils.yaml_bounds", "utils.threads", "utils.lazy", "utils.digest", "records.metrics", "records.schema",
        "run.epochs", "run.numerics", "run.distributed"],
    1: ["config.schema", "config.files", "records.files", "records.values", "run.checkpoint", "run.lock",
        "run.folder", "run.progress", "run.checkpoint_checks", "plugins"],
    2: ["datasets", "networks", "algorithms", "gradsamp", "averaging", "energy", "tracking"],
    3: ["config.experiment", "run.evaluation", "models", "run.warmup", "records.distributed_section"],
    4: ["run.parts", "run.header", "run.state", "run.engine", "run.training", "run.resuming"],
    5: ["launch", "analysis", "demo", "federated"],
    6: ["commands", "cli", "__main__", "__init__", "api", "extend"],
}
#: packages that only group modules of several floors (their __init__ holds nothing)
GROUPS = {"utils", "config", "records", "run"}
#: allowed imports between packages of one floor: (importer, imported)
SIBLINGS: set[tuple[str, str]] = set()


def _unit(module: str) -> str:
    """The floor unit of a dotted module name: dagrad.datasets.folders -> datasets; dagrad.run.engine ->
    run.engine; dagrad.run (a grouping package's empty __init__) -> __init__; dagrad -> __init__."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in GROUPS:
        return ".".join(parts[1:3]) if len(parts) > 2 else "__init__"
    return parts[1] if len(parts) > 1 else "__init__"


FLOOR_OF = {unit: floor for floor, units in FLOORS.items() for unit in units}


@functools.lru_cache(maxsize=None)
def modules() -> list[str]:
    names = ["dagrad"]
    for info in pkgutil.walk_packages([str(ROOT)], prefix="dagrad."):
        names.append(info.name)
    return sorted(names)


def imports_of(module: str) -> set[str]:
    """dagrad modules named by the module's import statements (anywhere in the file, function-level ones
    included): `from dagrad.x import y` names dagrad.x.y where y is a module, else dagrad.x."""
    spec = importlib.util.find_spec(module)
    tree = ast.parse(Path(spec.origin).read_text())
    package = module if spec.submodule_search_locations else module.rsplit(".", 1)[0]
    known = set(modules())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("dagrad")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.startswith("dagrad"):
                found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return found - {module}


def test_every_module_imports_without_a_cycle():
    for name in modules():
        if name != "dagrad.__main__":  # importing it runs the command line
            importlib.import_module(name)  # a cycle of top-level imports raises ImportError here


def test_every_module_has_a_floor():
    assert {_unit(m) for m in modules()} <= set(FLOOR_OF), "add new modules to FLOORS"


def test_imports_only_point_down():
    upward = []
    for name in modules():
        own = _unit(name)
        for target in imports_of(name):
            other = _unit(target)
            if other == own or target == "dagrad":
                continue
            if FLOOR_OF[other] > FLOOR_OF[own] or (FLOOR_OF[other] == FLOOR_OF[own] and FLOOR_OF[own] == 2
                                                   and (own, other) not in SIBLINGS):
                upward.append(f"{name} -> {target}")
    assert not upward, "imports that point up or sideways:\n" + "\n".join(sorted(upward))




def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import graph's strongly connected components of more than one module (Tarjan's algorithm,
    iterative): each is a set of modules that import each other, directly or through others."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
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
                    found.append(sorted(component))
    return found


def test_cycles_finds_a_loop_through_function_level_imports():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules():
    """No module reaches itself through imports, top-level or inside functions (a lazy import hides a
    cycle from Python but not from the design): the layers then read bottom-up."""
    graph = {name: {t for t in imports_of(name) if t in set(modules())} for name in modules()}
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)
