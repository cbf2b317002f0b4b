"""Folder layouts: DomainBed's, bring-your-own, Dassl's split files and WILDS' metadata files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from helpers import imagetree

from dagrad.config.schema import DataConfig
from dagrad.datasets import build
from dagrad.datasets import build_suite
from dagrad.utils.errors import ConfigError, DataError


PACS_ENVS = ["art_painting", "cartoon", "photo", "sketch"]


def _cfg(name, root, **kw):
    return DataConfig(name=name, root=str(root), test_envs=kw.pop("test_envs", [0]), image_size=16, **kw)


def test_domainbed_pacs_environments_classes_labels_and_splits(tmp_path):
    envs = {e: {"dog": 5, "horse": 5} for e in PACS_ENVS}
    envs["photo"] = {"dog": 5, "horse": 5, "person": 5}  # a class only one environment has
    imagetree.write_tree(tmp_path / "PACS", envs)
    suite = build_suite(_cfg("pacs", tmp_path))
    assert suite.env_names == PACS_ENVS
    assert suite.class_names == ["dog", "horse", "person"] and suite.num_classes == 3
    assert suite.notes["missing_classes"] == {e: ["person"] for e in PACS_ENVS if e != "photo"}
    photo = suite.environments[2]
    assert photo.labels.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert photo.describe(10).endswith("PACS/photo/person/img0.png")
    assert photo.load(0).mode == "RGB" and photo.load(0).size == (12, 12)
    a = build(_cfg("pacs", tmp_path), trial_seed=0)
    b = build(_cfg("pacs", tmp_path), trial_seed=0)
    c = build(_cfg("pacs", tmp_path), trial_seed=1)
    assert len(a.splits["env2_out"]) == 3 and len(a.splits["env2_in"]) == 12  # int(15 * 0.2) = 3
    assert all(np.array_equal(a.splits[k].indices, b.splits[k].indices) for k in a.splits)
    assert any(not np.array_equal(a.splits[k].indices, c.splits[k].indices) for k in a.splits)
    x, y = a.splits["env1_in"][0]
    assert tuple(x.shape) == (3, 16, 16)


def test_office_home_real_world_with_space(tmp_path):
    envs = {e: {"Alarm_Clock": 2, "Bike": 3} for e in ["Art", "Clipart", "Product", "Real World"]}
    imagetree.write_tree(tmp_path / "office_home", envs, ext=".jpg")
    suite = build_suite(_cfg("office_home", tmp_path, test_envs=[3]))
    assert suite.env_names == ["Art", "Clipart", "Product", "Real World"]
    assert "Real World/Bike/img2.jpg" in suite.environments[3].describe(4)
    assert suite.environments[3].load(4).mode == "RGB"


def test_missing_dataset_says_where_layout_and_command(tmp_path):
    with pytest.raises(DataError) as err:
        build_suite(_cfg("pacs", tmp_path))
    msg = str(err.value)
    assert str(tmp_path / "PACS") in msg and "art_painting" in msg
    assert f"dagrad data download pacs --root {tmp_path}" in msg
    imagetree.write_tree(tmp_path / "PACS", {e: {"dog": 1} for e in PACS_ENVS[:3]})
    with pytest.raises(DataError, match="sketch missing"):
        build_suite(_cfg("pacs", tmp_path))


def test_unknown_option_and_unset_root(tmp_path):
    imagetree.write_tree(tmp_path / "PACS", {e: {"dog": 1} for e in PACS_ENVS})
    with pytest.raises(ConfigError, match="allowed: cache"):
        build_suite(_cfg("pacs", tmp_path, options={"colour": 1}))
    with pytest.raises(ConfigError, match="data.root"):
        build_suite(DataConfig(name="pacs"))


def test_domain_net_duplicates_left_out_when_asked(tmp_path):
    envs = {e: {"apple": 3} for e in ["clipart", "infograph", "painting", "quickdraw", "real", "sketch"]}
    imagetree.write_tree(tmp_path / "domain_net", envs, ext=".jpg")
    listed = tmp_path / "dups.txt"
    listed.write_text("clipart/apple/img1.jpg\nreal/apple/img0.jpg\n")
    plain = build_suite(_cfg("domain_net", tmp_path))
    assert [len(e) for e in plain.environments] == [3] * 6
    cfg = _cfg("domain_net", tmp_path, options={"remove_duplicates": True, "duplicates_file": str(listed)})
    dedup = build_suite(cfg)
    assert [len(e) for e in dedup.environments] == [2, 3, 3, 3, 2, 3]
    assert not any(dedup.environments[0].describe(k).endswith("img1.jpg") for k in range(2))


def test_bring_your_own_folder(tmp_path):
    imagetree.write_tree(tmp_path, {"north": {"a": 2, "b": 2}, "south": {"b": 3, "c": 1}})
    suite = build_suite(_cfg("folder", tmp_path))
    assert suite.env_names == ["north", "south"] and suite.class_names == ["a", "b", "c"]
    assert suite.environments[1].labels.tolist() == [1, 1, 1, 2]
    picked = build_suite(_cfg("folder", tmp_path, options={"environments": ["south", "north"]}))
    assert picked.env_names == ["south", "north"]
    imagetree.write_tree(tmp_path / "single", {"only": {"a": 1}})
    with pytest.raises(DataError, match="at least two"):
        build_suite(_cfg("folder", tmp_path / "single"))


def _dassl_pacs(root: Path) -> None:
    classes = ["dog", "elephant"]
    for d in PACS_ENVS:
        lines = {"train": [], "crossval": []}
        for label, cls in enumerate(classes, 1):
            for k in range(4):
                rel = f"{d}/{cls}/p{k}.png"
                imagetree.write_image(root / "pacs" / "images" / rel, k)
                lines["train" if k < 3 else "crossval"].append(f"{rel} {label}")
        if d == "sketch":  # Dassl's known-bad file: listed but never readable
            (root / "pacs/images/sketch/dog/n02103406_4068-1.png").write_bytes(b"")
            lines["train"].append("sketch/dog/n02103406_4068-1.png 1")
        for split, items in lines.items():
            path = root / "pacs" / "splits" / f"{d}_{split}_kfold.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(items) + "\n")


def test_dassl_pacs_official_splits_one_indexed_and_bad_file_skipped(tmp_path):
    _dassl_pacs(tmp_path)
    bundle = build(_cfg("pacs_dassl", tmp_path, split="official"), trial_seed=0)
    suite = bundle.suite
    assert suite.env_names == PACS_ENVS and suite.class_names[:2] == ["dog", "elephant"]
    sketch = suite.environments[3]
    assert len(sketch) == 8 and not any("n02103406_4068-1" in sketch.describe(k) for k in range(8))
    assert sketch.labels.tolist() == [0, 0, 0, 1, 1, 1, 0, 1]  # train list then crossval list, labels - 1
    assert len(bundle.splits["env3_in"]) == 6 and len(bundle.splits["env3_out"]) == 2
    assert all(sketch.describe(k).endswith("p3.png") for k in bundle.splits["env3_out"].indices)


def test_dassl_missing_listed_file_is_reported(tmp_path):
    _dassl_pacs(tmp_path)
    (tmp_path / "pacs/images/photo/dog/p0.png").unlink()
    with pytest.raises(DataError, match="1 file\\(s\\) listed .* photo/dog/p0.png"):
        build_suite(_cfg("pacs_dassl", tmp_path))


def test_office_home_dg_train_val_folders(tmp_path):
    base = tmp_path / "office_home_dg"
    for d in ["art", "clipart", "product", "real_world"]:
        imagetree.write_tree(base / d, {"train": {"Bike": 3, "Pen": 2}, "val": {"Bike": 1, "Pen": 1}}, ext=".jpg")
    bundle = build(_cfg("office_home_dg", tmp_path, split="official"), trial_seed=0)
    assert bundle.suite.class_names == ["Bike", "Pen"]
    env = bundle.suite.environments[0]
    assert env.labels.tolist() == [0, 0, 0, 1, 1, 0, 1]
    assert len(bundle.splits["env0_in"]) == 5 and len(bundle.splits["env0_out"]) == 2
    assert "art/val/Pen/img0.jpg" in env.describe(6)


def test_domain_net_dassl_zero_indexed_lists(tmp_path):
    base = tmp_path / "domainnet"
    for d in ["clipart", "infograph", "painting", "quickdraw", "real", "sketch"]:
        lines = {"train": [], "test": []}
        for label, cls in enumerate(["aircraft_carrier", "zebra"]):
            for k in range(3):
                imagetree.write_image(base / d / cls / f"{d}_{k}.jpg", k)
                lines["train" if k < 2 else "test"].append(f"{d}/{cls}/{d}_{k}.jpg {label}")
        for split, items in lines.items():
            (base / "splits").mkdir(exist_ok=True)
            (base / "splits" / f"{d}_{split}.txt").write_text("\n".join(items))
    bundle = build(_cfg("domain_net_dassl", tmp_path, split="official"), trial_seed=0)
    assert bundle.suite.num_classes == 345 and bundle.suite.class_names[1] == "zebra"
    assert bundle.suite.environments[4].labels.tolist() == [0, 0, 1, 1, 0, 1]
    assert len(bundle.splits["env4_out"]) == 2


def test_wilds_domain_net_metadata(tmp_path):
    base = tmp_path / "domainnet_v1.0"
    rows = []
    for d in ["clipart", "infograph", "painting", "quickdraw", "real", "sketch"]:
        for y, cls in enumerate(["apple", "bee"]):
            for k, split in enumerate(["train", "train", "test"]):
                rel = f"{d}/{cls}/{d}_{y}{k}.jpg"
                imagetree.write_image(base / rel, k)
                rows.append([rel, d, split, cls, y])
    with open(base / "metadata.csv", "w", newline="") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_NONNUMERIC)
        writer.writerow(["image_path", "domain", "split", "category", "y"])
        writer.writerows(rows)
    bundle = build(_cfg("wilds_domain_net", tmp_path, split="official", test_envs=[5]), trial_seed=0)
    suite = bundle.suite
    assert suite.env_names[0] == "clipart" and suite.class_names == ["apple", "bee"]
    assert suite.environments[2].labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert bundle.splits["env2_out"].indices.tolist() == [2, 5]
    assert suite.environments[2].load(5).mode == "RGB"


def test_wilds_camelyon17_paths_and_hospitals(tmp_path):
    base = tmp_path / "camelyon17_v1.0"
    rows = [(0, "004", 4, 3328, 21792, 1, 0), (1, "004", 4, 3200, 21792, 0, 0), (2, "010", 1, 10, 20, 0, 3)]
    with open(base.mkdir(parents=True) or base / "metadata.csv", "w", newline="") as f:
        f.write(",patient,node,x_coord,y_coord,tumor,slide,center,split\n")
        for i, p, n, x, y, t, c in rows:
            f.write(f"{i},{p},{n},{x},{y},{t},{i},{c},0\n")
    imagetree.write_image(base / "patches/patient_004_node_4/patch_patient_004_node_4_x_3328_y_21792.png")
    suite = build_suite(_cfg("wilds_camelyon17", tmp_path))
    assert suite.env_names == ["hospital_0", "hospital_3"] and suite.num_classes == 2
    assert suite.environments[0].labels.tolist() == [1, 0]
    assert suite.environments[0].load(0).mode == "RGB"
    assert suite.environments[1].describe(0).endswith("patient_010_node_1/patch_patient_010_node_1_x_10_y_20.png")


def test_wilds_fmow_regions_and_row_numbers(tmp_path):
    base = tmp_path / "fmow_v1.1"
    base.mkdir()
    (base / "country_code_mapping.csv").write_text("alpha-3,region\nFRA,Europe\nBRA,Americas\n")
    (base / "rgb_metadata.csv").write_text(
        "split,category,country_code,timestamp\n"
        "train,airport,FRA,2010-01-01\nseq,zoo,BRA,2016-01-01\ntrain,zoo,BRA,2012-01-01\nval,dam,XXX,2014-01-01\n")
    suite = build_suite(_cfg("wilds_fmow", tmp_path))
    assert suite.env_names == ["region_0", "region_1", "region_2"]
    assert suite.notes["regions"] == {"region_0": "Europe", "region_1": "Americas", "region_2": "Other"}
    assert suite.environments[1].describe(0).endswith("images/rgb_img_2.png")
    assert suite.environments[1].labels.tolist() == [61] and suite.num_classes == 62
