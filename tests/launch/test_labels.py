"""Readable job links: by-label/<label> -> <config hash>, beside the hashed folders."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from dagrad.launch import _prepare_all, plan
from dagrad.launch.grid import GridPoint
from dagrad.launch.labels import job_labels, link_labels
from dagrad.records.files import find_runs

BASE = {"data": {"image_size": 12, "batch_size": 8, "eval_batch_size": 512, "test_envs": [5]},
        "network": {"options": {"width": 8}}, "steps_per_epoch": 3, "epochs": 2}


def test_labels_name_what_varies_and_stay_distinct():
    points = [GridPoint("rotated_digits", "erm", (5,), s, 0, t) for s in ("tensor", "skip") for t in (0, 1)]
    assert job_labels(points, ["a1", "a2", "a3", "a4"]) == ["erm-tensor-te5-s0", "erm-tensor-te5-s1",
                                                            "erm-skip-te5-s0", "erm-skip-te5-s1"]
    mixed = [GridPoint("rotated_digits", "erm", None, "none", h, 0, (("algorithm.hparams.lr", lr),))
             for h in (0, 1) for lr in (0.1, 0.01)]
    assert job_labels(mixed, ["b1", "b2", "b3", "b4"]) == ["erm-none-h0-s0-lr=0.1", "erm-none-h0-s0-lr=0.01",
                                                           "erm-none-h1-s0-lr=0.1", "erm-none-h1-s0-lr=0.01"]
    same = [GridPoint("d/x", "erm", None, "a b", 0, 0, (("k", "1"),)), GridPoint("d/x", "erm", None, "a b", 0, 0,
                                                                                  (("k", 1),))]
    assert job_labels(same, ["0123456789", "abcdefabcd"]) == ["erm-a_b-s0-k=1-01234567", "erm-a_b-s0-k=1-abcdefab"]


def test_a_sweep_folder_gets_relative_links_to_its_hashed_jobs(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"name": "l", "base": [BASE], "grid": {"trial_seeds": 2, "test_envs": [5],
                                                                          "gradsamp": ["none", "skip"]}}))
    _, jobs, out = plan(sweep, tmp_path / "out")
    _prepare_all(out, jobs)
    links = sorted((out / "by-label").iterdir())
    assert [p.name for p in links] == ["erm-none-te5-s0", "erm-none-te5-s1", "erm-skip-te5-s0", "erm-skip-te5-s1"]
    for link in links:
        target = os.readlink(link)
        assert not os.path.isabs(target) and Path(target).parent == Path("..")
        assert (link / "config.json").is_file() and link.resolve() in {j.folder.resolve() for j in jobs}
    assert {j.folder.name for j in jobs} == {j.id for j in jobs}  # the folders keep their hashes
    (jobs[0].folder / "records.jsonl").write_text("")
    assert find_runs(out) == [jobs[0].folder / "records.jsonl"]  # a link is not a second run
    # a narrower relaunch: the links of jobs no longer in the sweep go, the job folders stay
    sweep.write_text(yaml.safe_dump({"name": "l", "base": [BASE], "grid": {"trial_seeds": 1, "test_envs": [5],
                                                                          "gradsamp": ["none", "skip"]}}))
    _, fewer, _ = plan(sweep, tmp_path / "out")
    _prepare_all(out, fewer)
    assert sorted(p.name for p in (out / "by-label").iterdir()) == ["erm-none-te5-s0", "erm-skip-te5-s0"]
    assert all(j.folder.is_dir() for j in jobs)
    assert not list((out / "by-label").glob(".*.tmp"))


def test_without_symbolic_links_the_sweep_goes_on(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "symlink", refuse)
    assert link_labels(tmp_path, [GridPoint("d", "erm", None, "none", 0, 0)], ["abc"]) == {}
    assert not list((tmp_path / "by-label").iterdir())
