"""Bad data on disk: a corrupt image read by DataLoader workers, empty class folders, unreadable record
files, and report inputs that are not what report reads."""

from __future__ import annotations

import pytest

from helpers.faultinject import snapshot
from helpers.recordsfactory import metrics, write_run

FOLDER = ["data.name=folder", "data.image_size=12", "network.options.width=8", "data.batch_size=4",
          "data.eval_batch_size=64", "epochs=1", "steps_per_epoch=2", "data.test_envs=[0]"]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_corrupt_image_is_one_line_naming_the_file(cli, tmp_path, image_tree, workers):
    root = image_tree({"a": {"cat": 3, "dog": 3}, "b": {"cat": 3, "dog": 3}})
    bad = root / "b" / "dog" / "img1.png"
    bad.write_bytes(b"not a png at all")
    result = cli("train", "--quiet", "--out", "run", *FOLDER, f"data.root={root}", f"data.num_workers={workers}",
                 "data.options.cache=false")
    line = result.assert_ends_with_error(f"unreadable example {bad}", "set data.skip_corrupt=true")
    assert "Traceback" not in result.err and "Original" not in line
    assert (" (in DataLoader worker process" in line) == (workers > 0)


def test_an_empty_class_folder_is_skipped_with_a_warning(cli, tmp_path, image_tree):
    root = image_tree({"a": {"cat": 3, "dog": 3}, "b": {"cat": 3, "dog": 3}})
    (root / "a" / "bird").mkdir()
    result = cli("train", "--quiet", "--out", "run", *FOLDER, f"data.root={root}", "data.options.cache=false")
    assert result.code == 0, result.err
    assert f"dagrad: warning: folder: skipping empty class folder(s) under {root}: a/bird (no images; " \
           "`dagrad data check` lists them)" in result.err.splitlines()
    from dagrad.analysis.runs import read_run

    run = read_run(tmp_path / "run")
    assert run.header["data"]["split_sizes"] and run.header["resolved"]["data"]["name"] == "folder"
    from dagrad.datasets import build
    from dagrad.config.experiment import load_experiment

    bundle = build(load_experiment(None, [*FOLDER, f"data.root={root}", "data.options.cache=false"]).cfg.data, 0)
    assert bundle.num_classes == 2 and bundle.suite.class_names == ["cat", "dog"]


def test_data_check_names_the_empty_class_folder_itself(cli, tmp_path, image_tree):
    """Before: an empty 'bird' folder in a was described as b and c lacking bird."""
    root = image_tree({"a": {"cat": 2, "dog": 2}, "b": {"cat": 2, "dog": 2}, "c": {"cat": 2}})
    (root / "a" / "bird").mkdir()
    result = cli("data", "check", "folder", "--root", str(root))
    assert result.code == 1
    assert result.out.splitlines() == [
        f"folder at {root}: PROBLEMS FOUND",
        "  [!!] a: 4 images found, expected unknown",
        f"       empty class folder: {root / 'a' / 'bird'} (no images; skipped when training)",
        "  [ok] b: 4 images found, expected unknown",
        "  [ok] c: 2 images found, expected unknown",
        "       no folder for class(es) found in other environments: dog",
    ]
    assert result.err == ""


def test_report_skips_an_unreadable_record_file_and_reports_the_rest(cli, tmp_path):
    for seed in range(2):
        write_run(tmp_path / "runs" / f"r{seed}", test_envs=[0], trial_seed=seed,
                  epochs=[{"metrics": metrics(env0_in_acc=0.6 + 0.1 * seed), "train_J": 1, "eval_J": 1}])
    broken = tmp_path / "runs" / "broken" / "records.jsonl"
    broken.parent.mkdir()
    broken.write_bytes(b'{"type": "header"}\n{not json\n')
    binary = tmp_path / "runs" / "binary" / "records.jsonl"
    binary.parent.mkdir()
    binary.write_bytes(b"\xff\xfe\x00garbage")
    broken, binary = broken.relative_to(tmp_path), binary.relative_to(tmp_path)  # as `report runs` names them
    result = cli("report", "runs", "--format", "csv")
    assert result.code == 0, result.err
    assert result.err.splitlines() == [
        f"dagrad: warning: skipping an unreadable record file: {binary}: not a UTF-8 text file (byte 0); not a "
        f"dagrad record file",
        f"dagrad: warning: skipping an unreadable record file: {broken}:2: not a JSON record (Expecting property "
        f"name enclosed in double quotes)"]
    assert "65.0" in (tmp_path / "runs" / "report" / "summary.csv").read_text()


def test_leave_one_out_without_pairs_says_what_it_needs(cli, tmp_path):
    write_run(tmp_path / "runs" / "r", test_envs=[0], epochs=[{"metrics": metrics(), "train_J": 1, "eval_J": 1}])
    before = snapshot(tmp_path)
    cli("report", "runs", "--selection", "leave_one_out").assert_one_line_error(
        "leave_one_out selection needs, for each run with test environment t, finished runs with the pairs of "
        "test environments {t, v} for every other environment v (in a sweep: grid.leave_one_out_envs); none of "
        "the 1 single-test-environment runs has all of them")
    assert snapshot(tmp_path) == before


def test_report_of_a_missing_folder(cli, tmp_path):
    cli("report", "nowhere").assert_one_line_error("nowhere: no such folder (give a run or sweep folder)")
    assert snapshot(tmp_path) == {}
