"""Round 3 (issue 21, item 13): inputs that ended in a traceback now end in one line (or work)."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from dagrad.datasets.archives import extract
from dagrad.utils.errors import DataError
from helpers.faultinject import TINY, snapshot


@pytest.mark.parametrize("seconds", ["nan", "1e300", "inf", "0"])
def test_status_watch_needs_a_sane_number_of_seconds(cli, tmp_path, seconds):
    (tmp_path / "run").mkdir()
    cli("status", "run", "--watch", seconds).assert_one_line_error(
        "--watch: seconds between refreshes must be in (0, 86400], got")


@pytest.mark.parametrize("seconds,message", [("inf", "--seconds must be at most 3600"),
                                             ("1e300", "--seconds must be at most 3600"),
                                             ("nan", "--seconds must be > 0, got nan")])
def test_energy_probe_needs_a_finite_window(cli, tmp_path, seconds, message):
    cli("energy", "probe", "--seconds", seconds).assert_one_line_error(message)
    assert snapshot(tmp_path) == {}


def _tar(path, members):
    with tarfile.open(path, "w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("members,message", [
    ([("a", b"x"), ("a/b", b"y")], "refusing member 'a/b': it lies under 'a', which the archive holds as a file"),
    ([("a/b", b"y"), ("a", b"x")], "refusing member 'a/b': it lies under 'a'"),
    ([("d/a", b"x"), ("d/a/b/c", b"y")], "refusing member 'd/a/b/c': it lies under 'd/a'"),
    ([("a", None), ("a", b"x")], "refusing member 'a': the archive holds it as a file and as a folder"),
], ids=["file-then-child", "child-then-file", "deep", "file-and-folder"])
def test_an_archive_with_a_member_under_a_file_is_refused_before_writing(tmp_path, members, message):
    archive = _tar(tmp_path / "x.tar", members)
    with pytest.raises(DataError, match=message):
        extract(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_zip_with_a_member_under_a_file_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as zf:
        zf.writestr("a", b"x")
        zf.writestr("a/b", b"y")
    with pytest.raises(DataError, match="refusing member 'a/b': it lies under 'a'"):
        extract(tmp_path / "x.zip", tmp_path / "out")


def test_restart_with_out_dot(cli, tmp_path, monkeypatch):
    project = tmp_path / "proj"
    project.mkdir()
    monkeypatch.chdir(project)
    run = ["train", "--quiet", *TINY, "epochs=1", "--out", "."]
    assert cli(*run).code == 0
    result = cli(*run, "--restart")
    assert result.code == 0 and "Traceback" not in result.err, result.err
    assert (project / "records.jsonl").is_file()
    assert [p.name.startswith("proj.broken-") for p in tmp_path.iterdir() if p != project] == [True]


def test_out_at_the_root_is_refused(cli):
    cli("train", *TINY, "--out", "/").assert_one_line_error("--out /: the file system root cannot be a run folder")
