"""`dagrad train` end to end on a tiny PACS tree in DomainBed's layout, with a ResNet-18 at low
resolution and worker processes (persistent, as for real datasets)."""

from __future__ import annotations

from pathlib import Path

from helpers import imagetree

from dagrad.cli import main
from dagrad.records import read_records, split_run


CLASSES = ["dog", "elephant", "giraffe", "guitar", "horse", "house", "person"]


def test_train_resnet18_on_a_tiny_pacs_tree(tmp_path, capsys):
    envs = {env: {c: 3 for c in CLASSES} for env in ("art_painting", "cartoon", "photo", "sketch")}
    imagetree.write_tree(tmp_path / "data" / "PACS", envs, ext=".jpg")
    repo = Path(__file__).resolve().parents[2]
    code = main(["train", "--quiet", "-c", str(repo / "configs/datasets/pacs.yaml"),
                 "-c", str(repo / "configs/algorithms/erm.yaml"), f"data.root={tmp_path / 'data'}",
                 "network.name=resnet18", "network.pretrained=null", "data.image_size=32", "data.batch_size=4",
                 "data.num_workers=2", "epochs=2", "steps_per_epoch=2", "--out", str(tmp_path / "run")])
    assert code == 0
    header, epochs, summary = split_run(read_records(tmp_path / "run" / "records.jsonl"))
    assert header["data"]["environments"] == ["art_painting", "cartoon", "photo", "sketch"]
    assert header["data"]["split_sizes"] == {f"env{i}_{s}": n for i in range(4) for s, n in (("in", 17), ("out", 4))}
    assert [r["updates"] for r in epochs] == [2, 4]
    assert 0.0 <= epochs[-1]["metrics"]["env0_in_acc"] <= 1.0
    assert "OOD accuracy" in capsys.readouterr().out
