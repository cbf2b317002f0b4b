"""`make demo-table`'s splice: the README's block between its markers is replaced, the rest kept."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "demo_table.py"


def _module():
    spec = importlib.util.spec_from_file_location("demo_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_block_between_the_markers_is_replaced_and_nothing_else(tmp_path):
    m = _module()
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\nbefore\n{m.BEGIN}\nold table\n{m.END}\nafter\n")
    m.splice(readme, "new table\n")
    assert readme.read_text() == f"# x\nbefore\n{m.BEGIN}\nnew table\n{m.END}\nafter\n"
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="no <!-- demo-table:begin -->"):
        m.splice(readme, "new table\n")
    assert readme.read_text() == "no markers\n"


def test_the_shipped_readme_has_the_block():
    text = (SCRIPT.parents[1] / "README.md").read_text(encoding="utf-8")
    m = _module()
    assert text.count(m.BEGIN) == 1 and text.count(m.END) == 1 and text.index(m.BEGIN) < text.index(m.END)
