"""dagrad's modules form layers that only point down, with no import cycle.

Every module under dagrad/ is imported (a cycle among top-level imports fails right there), then its
imports are read from its source, function-level (lazy) ones included, and checked against the floors
below: a module may import its own floor's and lower floors' modules, never a higher floor's. Among the
components on one floor, a package may not import a sibling package (the engine combines them)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import dagrad

ROOT = Path(dagrad.__file__).resolve().parent

#: floor -> module or package names (a package's submodules share its floor)
FLOORS = {
    0: ["errors", "registry", "plain", "seeding", "atomic", "metrics", "epochs", "notices", "numerics",
        "record_schema", "yaml_bounds", "threads", "lazy"],
    1: ["config", "records", "checkpoint", "plugins", "record_values", "folderlock", "runfolder", "progress",
        "checkpoint_checks"],
    2: ["datasets", "networks", "algorithms", "gradsamp", "averaging", "energy", "tracking"],
    3: ["experiment", "evaluation", "distributed", "models", "warmup"],
    4: ["engine", "resuming"],
    5: ["launch", "analysis", "demo"],
    6: ["commands", "cli", "__main__", "__init__", "api", "extend"],
}
#: allowed imports between packages of one floor: (importer, imported)
SIBLINGS: set[tuple[str, str]] = set()


def _unit(module: str) -> str:
    """The floor unit of a dotted module name: dagrad.datasets.folders -> datasets; dagrad -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


FLOOR_OF = {unit: floor for floor, units in FLOORS.items() for unit in units}


def modules() -> list[str]:
    names = ["dagrad"]
    for info in pkgutil.walk_packages([str(ROOT)], prefix="dagrad."):
        names.append(info.name)
    return sorted(names)


def imports_of(module: str) -> set[str]:
    """dagrad modules named by the module's import statements (anywhere in the file)."""
    spec = importlib.util.find_spec(module)
    tree = ast.parse(Path(spec.origin).read_text())
    package = module if spec.submodule_search_locations else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("dagrad")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.startswith("dagrad"):
                found.add(base)
    return found


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
