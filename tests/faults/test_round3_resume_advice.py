"""Round 3 (issue 21, items 9 and 14): errors around resuming name the command that works, never the one
just run."""

from __future__ import annotations

import errno
import json

import pytest

from helpers.faultinject import TINY

RUN = ["--quiet", *TINY, "epochs=2", "steps_per_epoch=1"]


@pytest.fixture
def finished_run(cli, tmp_path):
    assert cli("train", *RUN, "--out", "run").code == 0
    return tmp_path / "run"


def _edit_header(folder, edit):
    path = folder / "records.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    edit(lines[0])
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


@pytest.mark.parametrize("with_config", [False, True], ids=["from-folder", "with-config"])
def test_an_edited_header_points_to_restart(cli, finished_run, with_config):
    _edit_header(finished_run, lambda h: h["config"].update(epochs=6))
    given = ["-c", "demo", *RUN, "epochs=6"] if with_config else []
    line = cli("train", "--resume", "--out", "run", *given).assert_one_line_error(
        "run cannot be resumed: its header's config differs from the run it records: epochs: 2 -> 6",
        "start it afresh with `dagrad train --restart --out run`")
    assert "--resume --out run" not in line


def test_a_run_id_from_another_version_points_to_restart(cli, finished_run):
    _edit_header(finished_run, lambda h: h.update(run_id="0123456789ab"))
    line = cli("train", "--resume", "--out", "run").assert_one_line_error(
        "run cannot be resumed: the run was made by another dagrad version; start it afresh with "
        "`dagrad train --restart --out run`")
    assert "--resume --out run" not in line


def test_a_different_config_still_points_to_resuming_from_the_folder(cli, finished_run):
    cli("train", "--resume", "--out", "run", "-c", "demo", *RUN, "epochs=3").assert_one_line_error(
        "epochs: 2 -> 3", "resume it without a config: dagrad train --resume --out run")


def test_a_full_disk_before_the_first_checkpoint_names_the_command_that_works(cli, tmp_path, monkeypatch):
    import dagrad.utils.atomic
    import dagrad.run.checkpoint

    real = dagrad.run.checkpoint.write_atomic

    def full(path, write):
        raise dagrad.utils.atomic.storage_error(path, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(dagrad.run.checkpoint, "write_atomic", full)
    line = cli("train", *RUN, "--out", "run").assert_ends_with_error(
        "the disk is full, free some space and then continue with: dagrad train --resume --out run")
    assert "run again" not in line
    monkeypatch.setattr(dagrad.run.checkpoint, "write_atomic", real)
    named = cli("train", *RUN, "--resume", "--out", "run")
    assert named.code == 0, named.err
