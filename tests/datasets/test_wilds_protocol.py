"""`data.protocol: wilds` on small synthetic metadata files. The expected splits are traced by hand from
WILDS 2.0's dataset classes (camelyon17_dataset.py: VAL_CENTER = 1, TEST_CENTER = 2, the CSV's split
column 0/1 = train/id_val elsewhere; fmow_dataset.py: time_after_2016, test = `test` rows from 2016,
val = `val` rows from 2013 to 2015, id_val = `val` rows before 2013, `seq` rows dropped, regions numbered by
first appearance over every row; domainnet_dataset.py: source train/test -> train/id_test, target
train/test -> val/test), and the metrics from WILDS's eval() (pooled accuracy; FMoW's worst region over
regions with images, "Other" excluded)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from helpers import imagetree

from dagrad.analysis.runs import wilds_figures as figures
from dagrad.cli import main
from dagrad.config.schema import DataConfig
from dagrad.datasets import build
from dagrad.utils.errors import ConfigError
from dagrad.config.experiment import load_experiment

# index, patient, node, x, y, tumor, slide, center, split
CAMELYON = [(0, "004", 4, 1, 1, 1, 0, 0, 0), (1, "004", 4, 2, 1, 0, 0, 0, 1), (2, "010", 1, 1, 1, 1, 5, 1, 0),
            (3, "010", 1, 2, 2, 0, 5, 1, 1), (4, "020", 2, 1, 1, 0, 9, 2, 0), (5, "030", 3, 1, 1, 1, 12, 3, 0),
            (6, "030", 3, 2, 1, 0, 12, 3, 0), (7, "040", 0, 1, 1, 1, 15, 4, 1), (8, "040", 0, 2, 1, 0, 15, 4, 0),
            (9, "020", 2, 3, 1, 1, 9, 2, 0)]


def camelyon(root: Path, images: bool = False) -> Path:
    base = root / "camelyon17_v1.0"
    base.mkdir(parents=True)
    with open(base / "metadata.csv", "w") as f:
        f.write(",patient,node,x_coord,y_coord,tumor,slide,center,split\n")
        for row in CAMELYON:
            f.write(",".join(map(str, row)) + "\n")
            i, p, n, x, y = row[:5]
            if images:
                imagetree.write_image(base / f"patches/patient_{p}_node_{n}/patch_patient_{p}_node_{n}_x_{x}_y_{y}.png", i)
    return root


def _cfg(name, root, **kw):
    return DataConfig(name=name, root=str(root), protocol="wilds", image_size=16, **kw)


def test_camelyon17_hospital_splits_follow_wilds(tmp_path):
    bundle = build(_cfg("wilds_camelyon17", camelyon(tmp_path)), 0)
    assert bundle.suite.env_names == [f"hospital_{i}" for i in range(5)]
    assert bundle.train_envs == [0, 3, 4] and bundle.test_envs == [1, 2]
    idx = {n: s.indices.tolist() for n, s in bundle.splits.items()}
    # positions within each hospital, in CSV order
    assert idx == {"env0_in": [0], "env0_out": [1], "env1_in": [0, 1], "env2_in": [0, 1],
                   "env3_in": [0, 1], "env4_in": [1], "env4_out": [0]}  # hospital 3 has no id_val rows here
    assert bundle.suite.environments[2].labels.tolist() == [0, 1]
    assert bundle.info["protocol"] == "wilds"
    assert bundle.info["protocol_metrics"]["splits"] == {"id_val": ["env0_out", "env3_out", "env4_out"],
                                                         "val": ["env1_in"], "test": ["env2_in"]}
    assert bundle.info["protocol_metrics"]["selection"] == ["val", "acc_avg"]


def test_camelyon17_metrics_by_hand(tmp_path):
    bundle = build(_cfg("wilds_camelyon17", camelyon(tmp_path)), 0)
    metrics = {"env0_out_acc": 1.0, "env4_out_acc": 0.0, "env1_in_acc": 0.5,
               "env2_in_acc": 1.0}
    figs = figures(metrics, bundle.info["protocol_metrics"], bundle.info["split_sizes"])
    assert figs == {"id_val:acc_avg": pytest.approx((1.0 * 1 + 0.0 * 1) / 2), "val:acc_avg": 0.5, "test:acc_avg": 1.0}


FMOW = """split,category,country_code,timestamp
train,airport,FRA,2010-05-01T00:00:00Z
val,airport,BRA,2011-03-01T00:00:00Z
seq,zoo,XXX,2016-01-01T00:00:00Z
train,zoo,BRA,2011-07-01T00:00:00Z
test,dam,FRA,2012-01-01T00:00:00Z
val,dam,FRA,2014-06-01T00:00:00Z
val,dam,BRA,2015-12-31T23:00:00-02:00
test,zoo,BRA,2016-02-01T00:00:00Z
test,zoo,FRA,2017-02-01T00:00:00Z
train,zoo,FRA,2014-01-01T00:00:00Z
test,zoo,XXX,2016-05-01T00:00:00Z
val,airport,BRA,2013-01-01T00:00:00Z
test,airport,FRA,2016-03-01T00:00:00Z
"""


def fmow(root: Path) -> Path:
    base = root / "fmow_v1.1"
    base.mkdir(parents=True)
    (base / "country_code_mapping.csv").write_text("alpha-3,region\nFRA,Europe\nBRA,Americas\n")
    (base / "rgb_metadata.csv").write_text(FMOW)
    return root


def test_fmow_time_splits_and_region_groups_follow_wilds(tmp_path):
    bundle = build(_cfg("wilds_fmow", fmow(tmp_path)), 0)
    suite = bundle.suite
    # regions by first appearance over every row: FRA Europe 0, BRA Americas 1, XXX (seq row 2) Other 2
    assert suite.env_names == ["year_2010", "year_2011", "val_Europe", "val_Americas", "test_Europe",
                               "test_Americas", "test_Other"]
    assert bundle.train_envs == [0, 1] and bundle.test_envs == [2, 3, 4, 5, 6]
    rows = {name: [Path(env.describe(k)).name for k in range(len(env))]
            for name, env in zip(suite.env_names, suite.environments)}
    # row 4 (pre-2013 test: id_test), row 6 (2016-01-01 01:00 UTC, a val row after 2016), row 9 (an OOD-period
    # train row) belong to no split WILDS uses; row 2 is sequestered
    assert rows == {"year_2010": ["rgb_img_0.png"], "year_2011": ["rgb_img_1.png", "rgb_img_3.png"],
                    "val_Europe": ["rgb_img_5.png"], "val_Americas": ["rgb_img_11.png"],
                    "test_Europe": ["rgb_img_8.png", "rgb_img_12.png"], "test_Americas": ["rgb_img_7.png"],
                    "test_Other": ["rgb_img_10.png"]}
    assert bundle.splits["env1_in"].indices.tolist() == [1] and bundle.splits["env1_out"].indices.tolist() == [0]
    assert "env0_out" not in bundle.splits  # 2010 has no id_val image: no empty split to evaluate
    protocol = bundle.info["protocol_metrics"]
    assert protocol["splits"] == {"id_val": ["env0_out", "env1_out"], "val": ["env2_in", "env3_in"],
                                  "test": ["env4_in", "env5_in", "env6_in"]}
    assert protocol["groups"]["env6_in"] == "Other" and protocol["selection"] == ["val", "acc_worst_group"]


def test_fmow_average_and_worst_region_by_hand(tmp_path):
    bundle = build(_cfg("wilds_fmow", fmow(tmp_path)), 0)
    metrics = {"env1_out_acc": 1.0, "env2_in_acc": 1.0, "env3_in_acc": 0.0,
               "env4_in_acc": 0.5, "env5_in_acc": 1.0, "env6_in_acc": 0.0}
    figs = figures(metrics, bundle.info["protocol_metrics"], bundle.info["split_sizes"])
    assert figs["id_val:acc_avg"] == 1.0
    assert figs["val:acc_avg"] == 0.5 and figs["val:acc_worst_group"] == 0.0
    assert figs["test:acc_avg"] == pytest.approx((0.5 * 2 + 1.0 + 0.0) / 4)
    assert figs["test:acc_worst_group"] == 0.5  # Other (0.0) is left out, as WILDS does


def test_domain_net_source_target_pair(tmp_path):
    base = tmp_path / "domainnet_v1.0"
    base.mkdir()
    with open(base / "metadata.csv", "w", newline="") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_NONNUMERIC)
        writer.writerow(["image_path", "domain", "split", "category", "y"])
        for d in ["clipart", "real", "sketch"]:
            for k, split in enumerate(["train", "test", "train", "train", "test"]):
                writer.writerow([f"{d}/bee/{d}_{k}.jpg", d, split, "bee", 0])
    bundle = build(_cfg("wilds_domain_net", tmp_path), 0)
    assert bundle.suite.env_names == ["real", "sketch"] and bundle.train_envs == [0] and bundle.test_envs == [1]
    idx = {n: s.indices.tolist() for n, s in bundle.splits.items()}
    assert idx == {"env0_in": [0, 2, 3], "env0_out": [1, 4], "env1_in": [1, 4], "env1_out": [0, 2, 3]}
    assert bundle.info["protocol_metrics"]["splits"] == {"id_test": ["env0_out"], "val": ["env1_out"],
                                                         "test": ["env1_in"]}
    swapped = build(_cfg("wilds_domain_net", tmp_path, options={"source_domain": "clipart",
                                                                   "target_domain": "real"}), 0)
    assert swapped.suite.env_names == ["clipart", "real"]


def test_protocol_only_for_datasets_that_have_it():
    with pytest.raises(ConfigError, match="data.protocol: rotated_digits has no wilds protocol; datasets that "
                                          "have one: wilds_camelyon17, wilds_domain_net, wilds_fmow"):
        load_experiment(None, ["data.protocol=wilds"])


def test_train_and_report_under_the_wilds_protocol(tmp_path, capsys):
    root = camelyon(tmp_path / "data", images=True)
    for trial in (0, 1):
        assert main(["train", "--quiet", "-c", "experiments/wilds_camelyon17", f"data.root={root}",
                     "network.name=resnet18", "network.options.pretrained=null", "data.image_size=32",
                     "data.batch_size=2", "data.num_workers=0", "epochs=2", "steps_per_epoch=1",
                     f"trial_seed={trial}", "--out", str(tmp_path / "runs" / f"t{trial}")]) == 0
    header = json.loads((tmp_path / "runs" / "t0" / "records.jsonl").read_text().splitlines()[0])
    assert header["data"]["test_envs"] == [1, 2] and header["resolved"]["data"]["test_envs"] == []
    assert header["data"]["split_sizes"]["env1_in"] == 2
    capsys.readouterr()
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "report")]) == 0
    text = capsys.readouterr().out
    assert "## WILDS protocol" in text and "OOD val avg" in text and "val:acc_avg" in text
    line = next(x for x in text.splitlines() if x.startswith("| ERM"))
    assert line.rstrip().endswith("| 2 | val:acc_avg |")  # two trial seeds
