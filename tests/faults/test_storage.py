"""A full disk (ENOSPC) and a read-only folder (EROFS) while train, sweep and report write: one line,
exit 2, no traceback, and the file system exactly as it was."""

from __future__ import annotations

import errno

import pytest
import yaml

from helpers.faultinject import TINY, snapshot

CODES = pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["disk-full", "read-only"])
REASON = {errno.ENOSPC: "the disk is full", errno.EROFS: "the file system is read-only"}


@CODES
def test_train_into_a_failing_folder_changes_nothing(cli, tmp_path, failing_writes, code):
    (tmp_path / "runs").mkdir()
    before = snapshot(tmp_path)
    failing_writes(tmp_path / "runs", code)
    result = cli("train", "--quiet", "--out", "runs/a/run", *TINY, "epochs=1")
    result.assert_one_line_error("cannot ", REASON[code])
    assert snapshot(tmp_path) == before


@CODES
def test_sweep_into_a_failing_folder_changes_nothing(cli, tmp_path, failing_writes, code):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"name": "s", "base": [{"epochs": 1}],
                                                      "grid": {"trial_seeds": 2}}))
    (tmp_path / "out").mkdir()
    before = snapshot(tmp_path)
    failing_writes(tmp_path / "out", code)
    cli("sweep", "-c", "s.yaml", "--out", "out/sweep").assert_one_line_error("cannot ", REASON[code])
    assert snapshot(tmp_path) == before


@CODES
def test_report_into_a_failing_folder_changes_nothing(cli, tmp_path, failing_writes, code):
    from helpers.recordsfactory import metrics, write_run

    for seed in range(2):
        write_run(tmp_path / "runs" / f"r{seed}", test_envs=[0], trial_seed=seed,
                  epochs=[{"metrics": metrics(), "train_J": 1, "eval_J": 1}])
    before = snapshot(tmp_path)
    failing_writes(tmp_path / "runs", code)
    cli("report", "runs").assert_one_line_error("cannot ", REASON[code])
    assert snapshot(tmp_path) == before


def test_a_disk_that_fills_at_the_first_checkpoint_leaves_a_run_that_resume_restarts(cli, tmp_path, monkeypatch):
    """The failed attempt is one line; its records (header and epoch 0) stay, and `--resume` starts afresh
    after moving them aside instead of looping between "no checkpoint" and "already holds a run"."""
    import dagrad.run.checkpoint

    real = dagrad.run.checkpoint.write_atomic

    def full(path, write):
        raise dagrad.utils.atomic.storage_error(path, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(dagrad.run.checkpoint, "write_atomic", full)
    cli("train", "--quiet", "--out", "run", *TINY, "epochs=2").assert_ends_with_error(
        "cannot write run/checkpoint.pt: No space left on device; the disk is full")
    # epoch 0's kept model is written before the checkpoint that would name it (see dagrad.models.kept)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["models", "records.jsonl"]
    monkeypatch.setattr(dagrad.run.checkpoint, "write_atomic", real)

    again = cli("train", "--quiet", "--out", "run", *TINY, "epochs=2")
    again.assert_one_line_error("already holds a run; pass --resume to continue it, --restart to move it aside")
    resumed = cli("train", "--quiet", "--resume", "--out", "run", *TINY, "epochs=2")
    assert resumed.code == 0, resumed.err
    assert "stopped before its first checkpoint, so there is nothing to resume" in resumed.err
    moved = list(tmp_path.glob("run.broken-*"))
    assert len(moved) == 1 and (moved[0] / "records.jsonl").is_file()
    from dagrad.records.files import read_records, split_run

    _, epochs, summary = split_run(read_records(tmp_path / "run" / "records.jsonl"))
    assert [r["epoch"] for r in epochs] == [0, 1] and summary is not None
