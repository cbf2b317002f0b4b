"""`--restart`, and `--resume` over records without a checkpoint, move aside only what dagrad wrote: a run
started in a project folder never moves the project's own files; `--out .` works."""

from __future__ import annotations

import pytest

from dagrad.run.folder import foreign_files, move_aside, open_run_folder

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def project(tmp_path):
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "src" / "main.py").write_text("print('mine')\n")
    (proj / "data").mkdir()
    (proj / "notes.txt").write_text("my notes\n")
    (proj / "records.jsonl").write_text('{"type": "header"}\n')
    (proj / "checkpoint.pt").write_bytes(b"ckpt")
    (proj / "done").write_text("")
    (proj / ".records.jsonl.abc123.tmp").write_text("partial")
    return proj


def test_restart_moves_only_dagrads_files(tmp_path):
    proj = project(tmp_path)
    with pytest.warns(UserWarning, match=r"3 file\(s\) dagrad did not write left in place"):
        with open_run_folder(proj, restart=True) as resume:
            assert resume is False
    assert (proj / "src" / "main.py").read_text() == "print('mine')\n"
    assert (proj / "data").is_dir() and (proj / "notes.txt").read_text() == "my notes\n"
    [moved] = tmp_path.glob("proj.broken-*")
    assert sorted(p.name for p in moved.iterdir()) == ["checkpoint.pt", "done", "records.jsonl", "why-moved.txt"]
    assert foreign_files(proj) == ["data", "notes.txt", "src"]


def test_resume_without_checkpoint_moves_only_dagrads_files(tmp_path):
    proj = project(tmp_path)
    (proj / "checkpoint.pt").unlink()
    with pytest.warns(UserWarning, match="stopped before its first checkpoint"):
        with open_run_folder(proj, resume=True):
            pass
    assert sorted(p.name for p in proj.iterdir()) == ["data", "notes.txt", "src"]


def test_move_aside_of_dot_works(tmp_path, monkeypatch):
    proj = project(tmp_path)
    monkeypatch.chdir(proj)
    moved = move_aside(".", "test")
    assert moved.parent == tmp_path and moved.name.startswith("proj.broken-")
    assert (moved / "records.jsonl").exists() and (proj / "notes.txt").exists()


@pytest.mark.slow
def test_restart_with_out_dot_keeps_the_project(cli, tmp_path):
    proj = project(tmp_path)
    (proj / "records.jsonl").unlink()
    (proj / "checkpoint.pt").unlink()
    (proj / "done").unlink()
    import os

    os.chdir(proj)
    args = ("--threads", "1", "train", "-c", "demo", "epochs=1", "steps_per_epoch=1", "--out", ".")
    assert cli(*args).code == 0
    result = cli(*args, "--restart")
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    assert (proj / "src" / "main.py").exists() and (proj / "notes.txt").exists() and (proj / "data").is_dir()
    assert (proj / "records.jsonl").exists()
    [moved] = tmp_path.glob("proj.broken-*")
    assert not (moved / "src").exists() and (moved / "records.jsonl").exists()
