"""A plugin named in a config is imported only with consent given on the command line; validation and
--dry-run import nothing before consent is checked; sweep workers inherit the launcher's consent."""

from __future__ import annotations

import sys

import pytest
import yaml

from dagrad.launch import plan, worker_command
from dagrad.plugins import ALL_PLUGINS, NO_PLUGINS, PluginConsent
from helpers.faultinject import TINY, snapshot

PLUGIN = '''
from pathlib import Path
Path(__file__).with_suffix(".ran").write_text("imported")
from dagrad.algorithms.erm import ERM
from dagrad.algorithms.registry import register


@register("{name}")
class Mine(ERM):
    """An ERM under another name."""
'''


def _plugin(tmp_path, name="mine"):
    path = tmp_path / f"{name}_plugin.py"
    path.write_text(PLUGIN.format(name=name))
    return path


def _ran(path) -> bool:
    return path.with_suffix(".ran").exists()


def test_a_config_naming_a_plugin_without_consent_stops_before_importing(cli, tmp_path):
    plugin = _plugin(tmp_path)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"plugins": [str(plugin)], "algorithm": {"name": "mine"}}))
    before = snapshot(tmp_path)
    cli("train", "-c", "c.yaml", "--out", "run").assert_one_line_error(
        f"plugins[0]: the config names the plugin '{plugin}', which runs code", f"--plugin {plugin}",
        "--allow-plugins")
    assert not _ran(plugin) and snapshot(tmp_path) == before


def test_an_included_plugin_needs_consent_even_when_validation_then_fails(cli, tmp_path):
    plugin = _plugin(tmp_path, "inc")
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({"plugins": [str(plugin)]}))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"include": "base.yaml", "epochs": 0}))
    result = cli("train", "-c", "c.yaml", "--out", "run")
    assert result.code == 2 and not _ran(plugin)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"include": "base.yaml", "algorithm": {"name": "nope"}}))
    cli("train", "-c", "c.yaml", "--out", "run").assert_one_line_error("the config names the plugin")
    assert not _ran(plugin)


def test_sweep_dry_run_imports_nothing_without_consent(cli, tmp_path):
    plugin = _plugin(tmp_path, "swp")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"name": "s", "base": [{"plugins": [str(plugin)]}],
                                                      "grid": {"algorithms": ["swp"]}}))
    before = snapshot(tmp_path)
    cli("sweep", "-c", "s.yaml", "--dry-run").assert_one_line_error("the config names the plugin", "--allow-plugins")
    cli("sweep", "-c", "s.yaml").assert_one_line_error("the config names the plugin")
    assert not _ran(plugin) and snapshot(tmp_path) == before
    listed = cli("sweep", "-c", "s.yaml", "--dry-run", "--allow-plugins")
    assert listed.code == 0 and "unchecked  rotated_digits/swp/none" in listed.out and not _ran(plugin)


def test_consent_by_name_covers_that_plugin_only(cli, tmp_path):
    first, second = _plugin(tmp_path, "one"), _plugin(tmp_path, "two")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"plugins": [str(first), str(second)]}))
    cli("train", "-c", "c.yaml", "--plugin", str(first), "--out", "run").assert_one_line_error(
        f"plugins[1]: the config names the plugin '{second}'")
    assert not _ran(first) and not _ran(second)


def test_plugin_flag_consents_and_trains(cli, tmp_path):
    plugin = _plugin(tmp_path, "ok")
    result = cli("train", "--quiet", "--plugin", str(plugin), "algorithm.name=ok", *TINY, "epochs=1", "--out", "run")
    assert result.code == 0, result.err
    assert _ran(plugin)


def test_worker_command_carries_the_launchers_consent(tmp_path):
    plugin = _plugin(tmp_path, "wk")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"name": "s", "base": [{"plugins": [str(plugin)]}],
                                                      "grid": {"algorithms": ["wk"]}}))
    for consent, extra in [(ALL_PLUGINS, ["--allow-plugins"]),
                           (PluginConsent.of([str(plugin)]), ["--plugin", str(plugin)])]:
        _, jobs, _ = plan(tmp_path / "s.yaml", tmp_path / "out", consent)
        assert worker_command(jobs[0], 2) == [sys.executable, "-m", "dagrad.launch.worker", str(jobs[0].folder),
                                              "--threads", "2", *extra]
    with pytest.raises(Exception, match="the config names the plugin"):
        plan(tmp_path / "s.yaml", tmp_path / "out", NO_PLUGINS)


def test_a_worker_without_consent_refuses_the_jobs_plugin(tmp_path, capsys):
    """A job folder's config.json is data too: the worker imports its plugin only with consent on its own
    command line (what the launcher passes)."""
    from dagrad.launch import prepare
    from dagrad.launch.worker import main as worker_main

    plugin = _plugin(tmp_path, "wn")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"name": "s", "base": [{"plugins": [str(plugin)],
                                                                            "epochs": 1}],
                                                      "grid": {"algorithms": ["erm"]}}))
    _, jobs, _ = plan(tmp_path / "s.yaml", tmp_path / "out", ALL_PLUGINS)
    prepare(jobs[0])
    (plugin.with_suffix(".ran")).unlink()
    assert worker_main([str(jobs[0].folder)]) == 1
    assert "the config names the plugin" in capsys.readouterr().out and not _ran(plugin)
