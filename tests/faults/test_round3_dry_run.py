"""Round 3 (issue 21, item 8): `sweep --dry-run` stops at what would make every job fail (an unknown
launcher, a GPU that is not there, a dataset not on disk) and imports no plugin, consent or not."""

from __future__ import annotations

import pytest
import yaml

from helpers.faultinject import snapshot

BASE = {"epochs": 1, "steps_per_epoch": 1}


def _sweep(tmp_path, base=None, grid=None, launcher=None):
    data = {"name": "s", "base": [{**BASE, **(base or {})}], "grid": grid or {"trial_seeds": 2}}
    if launcher:
        data["launcher"] = launcher
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))


def test_an_unknown_launcher(cli, tmp_path):
    _sweep(tmp_path)
    before = snapshot(tmp_path)
    cli("sweep", "-c", "s.yaml", "--dry-run", "--launcher", "nope").assert_one_line_error(
        "--launcher: unknown launcher 'nope'; choose one of: local, processes")
    assert snapshot(tmp_path) == before


def test_cuda_without_a_gpu(cli, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _sweep(tmp_path, {"device": "cuda"})
    before = snapshot(tmp_path)
    result = cli("sweep", "-c", "s.yaml", "--dry-run")
    result.assert_one_line_error("device: cuda was asked for but no CUDA device is available here",
                                 "(2 of 2 job(s) would fail on it)")
    assert result.out.count(" new ") == 2  # the listing still comes first
    assert snapshot(tmp_path) == before


def test_cuda_on_a_cluster_is_the_nodes_business(cli, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _sweep(tmp_path, {"device": "cuda"})
    assert cli("sweep", "-c", "s.yaml", "--dry-run", "--launcher", "slurm").code == 0


def test_a_dataset_not_on_disk(cli, tmp_path):
    _sweep(tmp_path, {"data": {"name": "pacs", "root": str(tmp_path / "data")}}, {"test_envs": [0, 1]})
    before = snapshot(tmp_path)
    cli("sweep", "-c", "s.yaml", "--dry-run").assert_one_line_error(
        f"pacs: not found at {tmp_path / 'data' / 'PACS'}", "dagrad data download pacs",
        "(2 of 2 job(s) would fail on it)")
    assert snapshot(tmp_path) == before


def test_a_folder_dataset_missing_an_environment(cli, tmp_path, image_tree):
    root = image_tree({"a": {"cat": 1}, "b": {"cat": 1}})
    _sweep(tmp_path, {"data": {"name": "folder", "root": str(root / "nope")}}, {"test_envs": [0]})
    cli("sweep", "-c", "s.yaml", "--dry-run").assert_one_line_error("folder: not found at")


PLUGIN = """
import pathlib
pathlib.Path(__file__).with_suffix(".ran").write_text("imported")
from dagrad.algorithms.registry import ALGORITHMS
from dagrad.algorithms.erm import ERM
ALGORITHMS.register("dryalgo", ERM, description="ERM under another name")
"""


@pytest.mark.parametrize("flag", ["--allow-plugins", "--plugin"])
def test_a_dry_run_imports_no_plugin_even_with_consent(cli, tmp_path, flag):
    plugin = tmp_path / "dry_plugin.py"
    plugin.write_text(PLUGIN)
    _sweep(tmp_path, {"plugins": [str(plugin)]}, {"algorithms": ["erm", "dryalgo"]})
    consent = ["--allow-plugins"] if flag == "--allow-plugins" else ["--plugin", str(plugin)]
    result = cli("sweep", "-c", "s.yaml", "--dry-run", *consent)
    assert result.code == 0, result.err
    assert not plugin.with_suffix(".ran").exists()
    assert "sweep s: 2 jobs" in result.out and " new      rotated_digits/erm/none" in result.out
    assert "unchecked  rotated_digits/dryalgo/none" in result.out
    assert "a dry run imports no plugin, so 1 job(s)" in result.out
    without = cli("sweep", "-c", "s.yaml", "--dry-run")
    without.assert_one_line_error("the config names the plugin")
    assert not plugin.with_suffix(".ran").exists()


def test_the_plugin_of_the_dry_run_test_is_a_real_one(tmp_path):
    """The plugin above registers what the grid names once it is imported (so the dry run's restraint, not a
    broken plugin, is what keeps the job unchecked)."""
    from dagrad.algorithms.registry import ALGORITHMS
    from dagrad.plugins import PluginConsent, import_plugins

    plugin = tmp_path / "dry_plugin.py"
    plugin.write_text(PLUGIN)
    try:
        import_plugins([str(plugin)], PluginConsent.of([str(plugin)]))
        assert "dryalgo" in ALGORITHMS and plugin.with_suffix(".ran").exists()
    finally:
        ALGORITHMS.unregister("dryalgo")


def test_a_real_sweep_stops_at_the_same_check_before_writing(cli, tmp_path):
    _sweep(tmp_path, {"data": {"name": "pacs", "root": str(tmp_path / "data")}}, {"test_envs": [0, 1]})
    before = snapshot(tmp_path)
    cli("sweep", "-c", "s.yaml", "--out", "out").assert_one_line_error(
        f"pacs: not found at {tmp_path / 'data' / 'PACS'}", "(2 of 2 job(s) would fail on it)")
    assert snapshot(tmp_path) == before
