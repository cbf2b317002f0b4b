"""Round 3 (issue 21, item 16): `dagrad status` reads folders without importing torch (seconds and hundreds
of MB per call before)."""

from __future__ import annotations

import subprocess
import sys

from helpers.recordsfactory import metrics, write_run

PROBE = ("import sys\nfrom dagrad.cli import main\ncode = main(['status', sys.argv[1]])\n"
         "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', code)\n")


def test_status_of_a_run_and_a_sweep_does_not_import_torch(tmp_path):
    write_run(tmp_path / "run", test_envs=[0], epochs=[{"metrics": metrics(), "train_J": 1, "eval_J": 1}])
    sweep = tmp_path / "sweep"
    write_run(sweep / "abc", test_envs=[0], epochs=[{"metrics": metrics(), "train_J": 1, "eval_J": 1}])
    (sweep / "jobs.json").write_text('[{"id": "abc", "job": "x", "setting": "none"}]\n')
    for folder in (tmp_path / "run", sweep):
        proc = subprocess.run([sys.executable, "-c", PROBE, str(folder)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines()[-1] == "NO-TORCH 0", proc.stdout + proc.stderr


def test_the_launch_package_still_exports_its_names():
    import dagrad.launch as launch

    assert launch.read_sweep.__module__ == "dagrad.launch.grid"
    assert launch.ProcessLauncher.__module__ == "dagrad.launch.runner"
    from dagrad.launch import CONFIG_NAME, LAUNCHERS, plan  # noqa: F401
