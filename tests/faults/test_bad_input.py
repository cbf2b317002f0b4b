"""Every bad input the reliability review found: exit 2, one line on stderr, no traceback, no new files.

Each case drives the real `dagrad` entry point from an empty working folder and compares the folder
tree before and after."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers.faultinject import TINY, snapshot

BAD_OVERRIDES = [
    ("algorithm.hparams.lr=-1", "algorithm.hparams.lr: -1.0 is out of range; allowed: a finite number > 0"),
    ("algorithm.hparams.weight_decay=-1", "algorithm.hparams.weight_decay: -1.0 is out of range"),
    ("algorithm.hparams.lr=.inf", "algorithm.hparams.lr: expected a finite number, got inf"),
    ("data.num_workers=-1", "data.num_workers: -1 is out of range; allowed: an integer >= 0"),
    ("data.image_size=0", "data.image_size: 0 is out of range; allowed: an integer >= 8 or null"),
    ("algorithm.hparams_seed=-1", "algorithm.hparams_seed: -1 is out of range"),
    ("data.test_envs=[]", "data.test_envs: give at least one test environment"),
    ("data.test_envs=[6]", "data.test_envs: 6 is not an environment of rotated_digits; environments: 0=rot0"),
    ("data.options.angles=[0,30]", "data.test_envs: 5 is not an environment of rotated_digits; environments: "
                                    "0=rot0, 1=rot30"),
]


@pytest.mark.parametrize("override,message", BAD_OVERRIDES, ids=[o for o, _ in BAD_OVERRIDES])
def test_bad_override(cli, tmp_path, override, message):
    before = snapshot(tmp_path)
    cli("train", "--out", str(tmp_path / "run"), *TINY, override).assert_one_line_error(message)
    assert snapshot(tmp_path) == before


def test_dropout_out_of_range(cli, tmp_path):
    before = snapshot(tmp_path)
    cli("train", "--out", "run", "network.name=resnet18", "network.options.dropout=2").assert_one_line_error(
        "network.options.dropout: 2.0 is out of range; allowed: a finite number in [0, 1)")
    assert snapshot(tmp_path) == before


CONFIG_FILES = [
    ("include-5", b"include: 5\n", "include: expected a file path or a list of file paths, got 5"),
    ("include-null", b"include: [null]\n", "include: expected a file path or a list of file paths, got [None]"),
    ("not-utf8", b"name: caf\xe9\n", "not a UTF-8 text file (byte 9); save the config as UTF-8"),
    ("duplicate-key", b"epochs: 3\nepochs: 4\n", "key 'epochs' appears twice (line 1 and line 2)"),
]


@pytest.mark.parametrize("name,content,message", CONFIG_FILES, ids=[c[0] for c in CONFIG_FILES])
def test_bad_config_file(cli, tmp_path, name, content, message):
    (tmp_path / "bad.yaml").write_bytes(content)
    before = snapshot(tmp_path)
    cli("train", "-c", "bad.yaml", "--out", "run").assert_one_line_error(message)
    assert snapshot(tmp_path) == before


def test_energy_probe_negative_seconds(cli, tmp_path):
    cli("energy", "probe", "--seconds", "-1").assert_one_line_error("--seconds must be > 0, got -1")
    assert snapshot(tmp_path) == {}


def test_report_of_a_record_file_names_the_folder_to_use(cli, tmp_path):
    from helpers.recordsfactory import metrics, write_run

    records = write_run(tmp_path / "run", test_envs=[0], epochs=[{"metrics": metrics(), "train_J": 1, "eval_J": 1}])
    before = snapshot(tmp_path)
    cli("report", str(records)).assert_one_line_error(
        f"{records} is a file; dagrad report reads a run or sweep folder: dagrad report {tmp_path / 'run'}")
    assert snapshot(tmp_path) == before


def test_threads_below_one(cli, tmp_path):
    cli("train", "--threads", "0", "--out", "run").assert_one_line_error("--threads must be at least 1, got 0")
    assert snapshot(tmp_path) == {}


def test_a_bad_input_in_a_real_process_prints_no_traceback(tmp_path):
    """The same promise through `python -m dagrad` (what a user's shell runs)."""
    proc = subprocess.run([sys.executable, "-m", "dagrad", "train", "--out", "run", "algorithm.hparams.lr=-1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "dagrad: error: algorithm.hparams.lr: -1.0 is out of range; allowed: a finite number > 0"]
    assert list(tmp_path.iterdir()) == []
