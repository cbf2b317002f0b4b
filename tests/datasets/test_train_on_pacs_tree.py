"""`dagrad train` end to end on a tiny PACS tree in DomainBed's layout, with a ResNet-18 at low
resolution and worker processes (persistent, as for real datasets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import imagetree

from dagrad.cli import main
from dagrad.records.files import read_records, split_run


CLASSES = ["dog", "elephant", "giraffe", "guitar", "horse", "house", "person"]


SMALL = ["network.name=resnet18", "network.options.pretrained=null", "data.image_size=32", "data.batch_size=4"]


def pacs_tree(root: Path) -> Path:
    envs = {env: {c: 3 for c in CLASSES} for env in ("art_painting", "cartoon", "photo", "sketch")}
    imagetree.write_tree(root / "PACS", envs, ext=".jpg")
    return root


def test_train_resnet18_on_a_tiny_pacs_tree(tmp_path, capsys):
    data = pacs_tree(tmp_path / "data")
    code = main(["train", "--quiet", "-c", "datasets/pacs",
                 "-c", "algorithms/erm", f"data.root={data}", *SMALL,
                 "data.num_workers=2", "epochs=2", "steps_per_epoch=2", "--out", str(tmp_path / "run")])
    assert code == 0
    header, epochs, summary = split_run(read_records(tmp_path / "run" / "records.jsonl"))
    assert header["data"]["environments"] == ["art_painting", "cartoon", "photo", "sketch"]
    assert header["data"]["split_sizes"] == {f"env{i}_{s}": n for i in range(4) for s, n in (("in", 17), ("out", 4))}
    assert [r["updates"] for r in epochs] == [2, 4]
    assert 0.0 <= epochs[-1]["metrics"]["env0_in_acc"] <= 1.0
    assert "OOD accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("algorithm", ["coral", "dann", "dann_grl"])
def test_every_shipped_algorithm_config_trains_on_pacs(tmp_path, algorithm):
    data = pacs_tree(tmp_path / "data")
    code = main(["train", "--quiet", "-c", "datasets/pacs",
                 "-c", f"algorithms/{algorithm}", f"data.root={data}", *SMALL,
                 "data.num_workers=0", "data.setting=da", "data.uda_holdout_fraction=0.2", "epochs=1", "steps_per_epoch=2",
                 "--out", str(tmp_path / "run")])
    assert code == 0
    _, epochs, _ = split_run(read_records(tmp_path / "run" / "records.jsonl"))
    assert epochs[0]["updates"] == 2 and epochs[0]["update_stats"]
