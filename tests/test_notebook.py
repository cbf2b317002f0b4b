"""notebooks/analysis.ipynb runs top to bottom through the public API: it trains a run inline, reads a small
sweep's runs and shows the report's table and plots."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "analysis.ipynb"


def _kernel() -> str:
    from jupyter_client.kernelspec import find_kernel_specs

    if "python3" not in find_kernel_specs():
        pytest.skip("no python3 Jupyter kernel; run `.venv/bin/python -m ipykernel install --sys-prefix`")
    return "python3"


def test_notebook_reproduces_the_table(tmp_path, monkeypatch):
    from dagrad.launch import LocalLauncher, run_sweep

    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({
        "base": [{"data": {"image_size": 12, "batch_size": 8, "eval_batch_size": 512}, "network": {"options": {"width": 8}},
                  "epochs": 4, "steps_per_epoch": 3}],
        "grid": {"trial_seeds": 2, "gradsamp": {"none": None, "tensor": {"sampler": "tensor", "schedule_options": {"start": 2, "every": 2}},
                                                "skip": {"sampler": "skip", "schedule_options": {"start": 2, "every": 2}}}}}))
    outcome = run_sweep(sweep, tmp_path / "runs", launcher=LocalLauncher(threads=1), stream=None)
    assert not outcome.failed
    monkeypatch.setenv("DAGRAD_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DAGRAD_NOTEBOOK_OUT", str(tmp_path / "nb"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, kernel_name=_kernel(), timeout=120,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text = "\n".join(str(o.get("data", {}).get("text/markdown", "")) + str(o.get("text", ""))
                     + str(o.get("data", {}).get("text/plain", ""))
                     for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", []))
    assert "| ERM | tensor |" in text and "| ERM | skip |" in text and "| ERM | full |" in text
    assert "vs its equal-energy control" in text
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert (tmp_path / "nb" / "rotated_digits-pareto.svg").is_file()
    assert (tmp_path / "nb" / "inline-run" / "records.jsonl").is_file()
    assert "sampled" in text  # the inline run's epoch table
    sources = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    assert "dagrad.train(" in sources and "dagrad.load_runs(" in sources and "dagrad.report(" in sources
    assert "dagrad.analysis" not in sources  # the public API only
