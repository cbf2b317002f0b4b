"""Before a cluster sweep is submitted, each dataset's file index is built once, on the submitting host."""

from __future__ import annotations

import yaml

from helpers import imagetree

from dagrad.launch import plan
from dagrad.launch.shared_work import build_indexes

CLASSES = ["dog", "elephant", "giraffe", "guitar", "horse", "house", "person"]


def test_each_dataset_is_indexed_once_and_the_tasks_find_it_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGRAD_CACHE_DIR", str(tmp_path / "cache"))
    envs = {env: {c: 2 for c in CLASSES} for env in ("art_painting", "cartoon", "photo", "sketch")}
    imagetree.write_tree(tmp_path / "data" / "PACS", envs, ext=".jpg")
    imagetree.age(tmp_path / "data")  # not changed within the last seconds: the cache is trusted
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({
        "name": "t", "base": ["datasets/pacs", {"data": {"root": str(tmp_path / "data")}, "network": {
            "name": "resnet18", "options": {"pretrained": None}}}],
        "grid": {"test_envs": [0, 1, 2, 3], "trial_seeds": 2, "datasets": ["pacs", "rotated_digits"]}}))
    _, jobs, _ = plan(sweep, tmp_path / "out")
    said: list[str] = []
    assert build_indexes(jobs, said.append) == ["pacs"]  # eight PACS jobs, one index; the digits are embedded
    assert len(said) == 1 and "data pacs" in said[0] and "indexed" in said[0]
    assert list((tmp_path / "cache").rglob("*.npz"))
    said.clear()
    build_indexes(jobs, said.append)
    assert "from the cache" in said[0]
