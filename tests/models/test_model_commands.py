"""evaluate, predict and export on a tiny trained run; per-example predictions; the report's model links."""

from __future__ import annotations

import csv
import importlib.util
import json

import pytest
import torch
from PIL import Image

from dagrad.cli import main
from dagrad.utils.errors import ConfigError
from dagrad.models import load_model

TINY = ["data.image_size=12", "network.options.width=8", "data.batch_size=8", "epochs=2", "steps_per_epoch=2",
        "data.eval_batch_size=512"]


def train(out, *overrides: str):
    from dagrad.run.training import train_run as train_engine
    from dagrad.config.experiment import load_experiment

    return train_engine(load_experiment(None, [*TINY, *overrides]), out, progress=False)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Two runs (test environments 4 and 5) in one folder, the first with per-example predictions."""
    root = tmp_path_factory.mktemp("models") / "sweep"
    train(root / "t4", "data.test_envs=[4]", "eval.save_predictions=true")
    train(root / "t5", "data.test_envs=[5]")
    return root


def digit_tree(root, per_class=2):
    """root/<env>/<class>/*.png: white digits-like blobs on black, two environments, classes 0, 1, 7."""
    for e, env in enumerate(("photos", "scans")):
        for c in ("0", "1", "7"):
            for k in range(per_class):
                image = Image.new("L", (20, 20), 0)
                image.paste(255, (4 + k + e, 4, 10 + int(c), 16))
                (root / env / c).mkdir(parents=True, exist_ok=True)
                image.save(root / env / c / f"{k}.png")
    return root


def test_evaluate_on_a_folder_tree_writes_jsonl_and_a_table(sweep, tmp_path, capsys):
    tree = digit_tree(tmp_path / "tree")
    out = tmp_path / "eval.jsonl"
    assert main(["evaluate", str(sweep / "t4"), "--data", str(tree), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| t4 | best (epoch" in printed and "| photos | 6 |" in printed and "| scans | 6 |" in printed
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["which"] == "best"
    rows = lines[1:]
    assert [r["env"] for r in rows] == ["photos", "scans"] and all(r["n"] == 6 for r in rows)
    for row in rows:
        known = {k: v for k, v in row["per_class_acc"].items() if v is not None}
        assert set(known) == {"0", "1", "7"}
        assert row["acc"] == pytest.approx(sum(known.values()) / 3)  # two images per class
        assert 0 <= row["ece"] <= 1 and row["loss"] > 0
        assert row["energy"]["name"] == "inference" and row["energy"]["seconds"] > 0
    # one environment by name; a class the model does not know is one line
    assert main(["evaluate", str(sweep / "t4"), "--data", str(tree), "--envs", "scans", "--which", "last",
                 "--out", str(out)]) == 0
    assert [json.loads(x)["env"] for x in out.read_text().splitlines()[1:]] == ["scans"]
    (tree / "photos" / "cat").mkdir()
    Image.new("L", (20, 20)).save(tree / "photos" / "cat" / "a.png")
    capsys.readouterr()
    assert main(["evaluate", str(sweep / "t4"), "--data", str(tree), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "class 'cat' is not one of the model's classes" in err


def test_evaluate_on_the_runs_dataset_matches_the_records_on_whole_environments(sweep, tmp_path):
    from dagrad.analysis.model_scores import evaluate_models

    from dagrad.records.files import read_records, split_run

    lines, path = evaluate_models(sweep / "t4", "rotated_digits", envs=["4"], out=tmp_path / "e.jsonl")
    row = lines[1]
    header, epochs, _ = split_run(read_records(sweep / "t4" / "records.jsonl"))
    sizes = header["data"]["split_sizes"]
    n_in, n_out = sizes["env4_in"], sizes["env4_out"]
    metrics = epochs[row["epoch"]]["metrics"]
    assert row["env"] == "rot60" and row["n"] == n_in + n_out  # the whole environment: its in and out splits
    correct = round(metrics["env4_in_acc"] * n_in) + round(metrics["env4_out_acc"] * n_out)
    assert round(row["acc"] * row["n"]) == correct
    assert row["loss"] == pytest.approx((metrics["env4_in_loss"] * n_in + metrics["env4_out_loss"] * n_out)
                                        / row["n"], rel=1e-5)
    assert path.is_file() and len(path.read_text().splitlines()) == 2


def test_evaluate_a_sweep_scores_each_cells_selected_model(sweep, tmp_path):
    from dagrad.analysis.runs import read_runs
    from dagrad.analysis.selection import select
    from dagrad.analysis.model_scores import evaluate_models

    tree = digit_tree(tmp_path / "tree")
    lines, path = evaluate_models(sweep, str(tree), envs=["photos"])
    assert path == sweep / "evaluations" / "tree-selected.jsonl"
    chosen = select(read_runs(sweep), "training_domain")
    rows = lines[1:]
    assert [(r["cell"]["test_env"], r["epoch"]) for r in rows] == list(zip(chosen["test_env"], chosen["epoch"]))
    assert all(r["model"] == "best" for r in rows)


def test_predict_gives_probabilities_that_sum_to_one(sweep, tmp_path, capsys):
    tree = digit_tree(tmp_path / "tree")
    assert main(["predict", str(sweep / "t5"), str(tree / "photos"), str(tree / "scans" / "1" / "0.png")]) == 0
    rows = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert rows[0] == ["file", "predicted", *map(str, range(10))]
    assert len(rows) == 1 + 6 + 1
    for row in rows[1:]:
        probs = [float(p) for p in row[2:]]
        assert sum(probs) == pytest.approx(1.0, abs=1e-5)
        assert row[1] == str(max(range(10), key=probs.__getitem__))
    assert main(["predict", str(sweep / "t5"), str(tmp_path / "nothing")]) == 2


def test_torchscript_export_equals_eager(sweep, tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert main(["export", str(sweep / "t4"), "--format", "torchscript", "--out", str(out)]) == 0
    assert "written:" in capsys.readouterr().out
    scripted = torch.jit.load(str(out))
    eager = load_model(sweep / "t4", "best").model
    x = torch.rand(5, 1, 12, 12)
    assert torch.allclose(scripted(x), eager(x), atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
                    reason="the export extra (onnx, onnxruntime) is not installed")
def test_onnx_export_equals_eager(sweep, tmp_path):
    import onnxruntime

    from dagrad.models.exporting import export

    path, diff = export(sweep / "t4", "onnx", out=tmp_path / "m.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(4, 1, 12, 12)
    got = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    assert torch.allclose(got, load_model(sweep / "t4", "best").model(x), atol=1e-4, rtol=1e-4) and diff < 1e-4


def test_onnx_without_the_extra_is_one_line(sweep, tmp_path, monkeypatch, capsys):
    import dagrad.models.exporting as exporting

    real = importlib.util.find_spec
    hidden = ("onnx", "onnxruntime")  # as on a machine without the extra, whatever this one has
    monkeypatch.setattr(exporting.importlib.util, "find_spec", lambda m: None if m in hidden else real(m))
    with pytest.raises(ConfigError, match=r"needs the export extra \(onnx and onnxruntime not installed\)"):
        exporting.export(sweep / "t4", "onnx")
    assert main(["export", str(sweep / "t4"), "--format", "onnx", "--out", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'dagrad[export]'" in err
    assert not (tmp_path / "x.onnx").exists()


def test_saved_predictions_agree_with_the_records(sweep):
    from dagrad.records.files import read_records, split_run

    _, epochs, _ = split_run(read_records(sweep / "t4" / "records.jsonl"))
    for record in epochs:
        rows = list(csv.DictReader((sweep / "t4" / "predictions" / f"epoch-{record['epoch']}.csv").open()))
        by_split: dict = {}
        for row in rows:
            by_split.setdefault(row["split"], []).append(row)
            assert 0.0 <= float(row["prob_label"]) <= 1.0
        for split, members in by_split.items():
            acc = sum(r["label"] == r["predicted"] for r in members) / len(members)
            assert acc == pytest.approx(record["metrics"][f"{split}_acc"], abs=1e-12)
        assert set(by_split) == {k[:-4] for k in record["metrics"] if k.endswith("_acc")}
    assert not (sweep / "t5" / "predictions").exists()  # off by default


def test_the_report_names_each_selected_kept_model(sweep):
    from dagrad.analysis.tables import build

    selected, _ = build(sweep)
    assert len(selected) == 2
    for row in selected.to_dict("records"):
        assert row["model"].endswith(f"models/epoch-{row['epoch']}.pt")
        assert (sweep / row["model"].split("sweep/", 1)[1]).is_file()
    from dagrad.analysis.report import write_report

    text, _ = write_report(sweep, plots=False)
    assert "### Selected models" in text and "models/epoch-" in text
