"""docs/api_example.py (quoted by the README's "Python API" section) runs as it is, in a fresh folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "api_example.py"


@pytest.mark.slow
def test_the_readme_api_example_runs_verbatim(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLE.parents[1]), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    assert "OOD accuracy" in out.stdout and "sampled" in out.stdout
    assert "ConfigError: unknown key 'data.fo'; allowed keys in data:" in out.stdout
    assert "Traceback" not in out.stderr
    for name in ("full/records.jsonl", "gradsamp/records.jsonl", "gradsamp.png", "pareto.png"):
        assert (tmp_path / "runs" / "api-example" / name).is_file(), name
