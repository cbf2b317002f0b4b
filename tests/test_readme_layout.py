"""The README's layout table names every package and root module of dagrad/, and every path it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dagrad"


def table_paths() -> set[str]:
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| where | what it holds |"):]
    table = table[: table.index("\n\n")]
    found = set()
    for row in table.splitlines()[2:]:
        where = row.split("|")[1]
        names = re.findall(r"`([^`]+)`", where)
        base = ""
        for name in names:
            if name.startswith("dagrad/"):
                base = name.rsplit("/", 1)[0] + "/" if not name.endswith("/") else name
                found.add(name.rstrip("/"))
            else:  # `tracking/` after `dagrad/api/`: a sibling of the row's first path
                found.add((base.rsplit("/", 2)[0] + "/" + name).rstrip("/") if name.endswith("/") else base + name)
    return found


def test_every_package_and_root_module_is_in_the_table():
    listed = table_paths()
    packages = {f"dagrad/{p.name}" for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    packages.add("dagrad/configs")
    modules = {f"dagrad/{p.name}" for p in PACKAGE.glob("*.py")} - {"dagrad/__init__.py", "dagrad/__main__.py",
                                                                    "dagrad/cli.py", "dagrad/version.py",
                                                                    "dagrad/demo.py", "dagrad/plugins.py"}
    missing = sorted((packages | modules) - listed)
    assert not missing, f"not in the README's layout table: {missing}"


def test_every_path_in_the_table_exists():
    gone = sorted(p for p in table_paths() if not (ROOT / p).exists())
    assert not gone, f"the README's layout table names paths that do not exist: {gone}"
