"""Third-party launchers plug in through the entry-point group `dagrad.launchers` (an installed package),
with options checked from the sweep's launcher: block as the built-in ones."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest
import yaml

from dagrad.utils.errors import ConfigError
from dagrad.launch import choose_launcher, read_sweep, run_sweep
from dagrad.launch.runner import LAUNCHERS

MODULE = '''
from dagrad.launch.runner import LAUNCHERS, LocalLauncher
from dagrad.registry import Option


class TaggingLauncher(LocalLauncher):
    """runs jobs here, after leaving a tag file in each job folder"""

    name = "tagging"

    def __init__(self, workers=1, threads=None, tag="x"):
        super().__init__(workers, threads)
        self.tag = tag

    def launch(self, jobs, progress):
        for job in jobs:
            (job.folder / "tag").write_text(self.tag)
        return super().launch(jobs, progress)


LAUNCHERS.register("tagging", TaggingLauncher, options={"tag": Option("x", str, "written into each job folder")})
'''


@pytest.fixture
def installed_launcher(tmp_path, monkeypatch):
    """A package installed the way pip leaves one: a module and its *.dist-info with entry_points.txt."""
    site = tmp_path / "site"
    info = site / "dagrad_tagging-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dagrad-tagging\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[dagrad.launchers]\ntagging = tagging_launcher:TaggingLauncher\n")
    (site / "tagging_launcher.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    monkeypatch.setattr(LAUNCHERS, "_loaded", False)  # look at the installed packages again
    yield
    LAUNCHERS.unregister("tagging")
    sys.modules.pop("tagging_launcher", None)


def test_an_installed_launcher_is_listed_and_runs_a_sweep(installed_launcher, tmp_path, capsys):
    from dagrad.cli import main

    assert main(["list", "launchers"]) == 0
    out = capsys.readouterr().out
    assert "tagging: runs jobs here, after leaving a tag file in each job folder  [from tagging_launcher]" in out
    assert "    tag = 'x' (string)  written into each job folder" in out
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({
        "name": "t", "grid": {"trial_seeds": 1}, "launcher": {"name": "tagging", "tag": "from-the-block"},
        "base": [{"data": {"image_size": 12, "batch_size": 8, "eval_batch_size": 512}, "epochs": 1,
                  "steps_per_epoch": 2, "network": {"options": {"width": 8}}}]}))
    launcher, _ = choose_launcher(read_sweep(sweep), threads=1)
    outcome = run_sweep(sweep, tmp_path / "out", launcher=launcher, stream=None)
    assert [r.status for r in outcome.results] == ["done"]
    assert (outcome.jobs[0].folder / "tag").read_text() == "from-the-block"


def test_an_installed_launchers_options_are_checked(installed_launcher, tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"name": "t", "grid": {"trial_seeds": 1},
                                     "launcher": {"name": "tagging", "colour": "red"}}))
    with pytest.raises(ConfigError, match="launcher.colour: not an option of tagging; allowed: tag"):
        choose_launcher(read_sweep(sweep))
