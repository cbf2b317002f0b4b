"""A sweep file's shell text (`launcher: {setup: [...], python: ...}`) runs only with --allow-plugins; the
submitit folder, whose pickles the nodes unpickle, is the owner's alone whatever the umask."""

from __future__ import annotations

import os
import stat

import pytest

from dagrad.utils.errors import ConfigError

pytest.importorskip("submitit")

SWEEP = ("name: x\nbase: [demo, {epochs: 1, steps_per_epoch: 1}]\n"
         "launcher: {name: slurm, cluster: local, %s, wait: true}\n"
         "grid: {datasets: [rotated_digits], algorithms: [erm], test_envs: [5], trial_seeds: [0]}\n")


@pytest.mark.parametrize("shell", ['setup: ["touch SETUP_RAN"]', 'python: "touch SETUP_RAN; python"',
                                   'additional: {comment: "x\\ntouch SETUP_RAN"}'])
def test_shell_from_a_sweep_file_needs_consent(cli, tmp_path, shell):
    (tmp_path / "e.yaml").write_text(SWEEP % shell)
    result = cli("--threads", "1", "sweep", "-c", "e.yaml", "--out", "es")
    assert result.code == 2
    [line] = result.err.strip().splitlines()
    assert "--allow-plugins" in line and "shell" in line
    assert not (tmp_path / "SETUP_RAN").exists()
    assert not (tmp_path / "es").exists()  # nothing written, nothing submitted


def test_the_api_refuses_the_same_without_allow_plugins(tmp_path, monkeypatch):
    import dagrad

    monkeypatch.chdir(tmp_path)
    (tmp_path / "e.yaml").write_text(SWEEP % 'setup: ["touch SETUP_RAN"]')
    with pytest.raises(ConfigError, match="allow_plugins=True"):
        dagrad.sweep("e.yaml", out="es")
    assert not (tmp_path / "SETUP_RAN").exists() and not (tmp_path / "es").exists()


def test_consent_lets_the_block_through(tmp_path):
    from dagrad.launch import choose_launcher, read_sweep
    from dagrad.plugins import ALL_PLUGINS

    (tmp_path / "e.yaml").write_text(SWEEP % 'setup: ["module load cuda"]')
    launcher, _ = choose_launcher(read_sweep(tmp_path / "e.yaml"), consent=ALL_PLUGINS)
    assert launcher.options["setup"] == ["module load cuda"]


def test_the_submitit_folder_is_private_whatever_the_umask(tmp_path):
    from dagrad.launch.slurm import SubmititLauncher

    old = os.umask(0)
    try:
        launcher = SubmititLauncher(cluster="local")
        launcher.executor(tmp_path / "sweep")
        (tmp_path / "sweep" / ".submitit").chmod(0o777)
        launcher.executor(tmp_path / "sweep")  # a relaunch tightens it again
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "sweep" / ".submitit").stat().st_mode)
    assert mode == 0o700
