"""Kept models: written beside the records, weights only, reproducing the recorded accuracy bit for bit,
surviving a crash and resume, and refused (in one line) when tampered with."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from dagrad.utils.errors import CheckpointError, ConfigError
from dagrad.models import load_model, read_manifest
from dagrad.models.kept import MODELS_DIR
from dagrad.records.files import read_records, split_run

TINY = ["data.image_size=12", "network.options.width=8", "data.batch_size=8", "epochs=3", "steps_per_epoch=3",
        "data.eval_batch_size=512"]


def train(out, *overrides: str):
    from dagrad.run.training import train_run as train_engine
    from dagrad.config.experiment import load_experiment

    return train_engine(load_experiment(None, [*TINY, *overrides]), out, progress=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kept") / "run"
    train(folder, "algorithm.hparams.lr=0.01")
    return folder


def recorded(folder):
    header, epochs, summary = split_run(read_records(folder / "records.jsonl"))
    return header, epochs, summary


def rescore(folder, model):
    """The model evaluated on the run's own evaluation splits, as the engine evaluates."""
    from dagrad import datasets
    from dagrad.run.evaluation import evaluate
    from dagrad.config.experiment import experiment_from_dict

    header, _, _ = recorded(folder)
    exp = experiment_from_dict(header["config"])
    data = datasets.build(exp.data_config(), exp.cfg.trial_seed, exp.cfg.eval_mode)
    return evaluate(model.algorithm, data.eval_loader(), torch.device("cpu"))[0]


def test_best_and_last_are_kept_and_reproduce_the_recorded_accuracy_bit_for_bit(run):
    header, epochs, summary = recorded(run)
    vals = [sum(e["metrics"][f"env{i}_out_acc"] for i in header["data"]["train_envs"]) for e in epochs]
    best_epoch = vals.index(max(vals))  # the first epoch with the highest training-domain validation
    manifest = read_manifest(run)
    assert manifest["models"]["best"]["epoch"] == best_epoch
    assert manifest["models"]["last"]["epoch"] == len(epochs) - 1
    assert summary["kept"]["best"] == f"models/epoch-{best_epoch}.pt"
    files = sorted(p.name for p in (run / MODELS_DIR).iterdir())
    assert files == sorted({"kept.json", f"epoch-{best_epoch}.pt", f"epoch-{len(epochs) - 1}.pt"})
    for which in ("best", "last"):
        loaded = load_model(run, which)
        assert not loaded.model.training
        assert rescore(run, loaded.model) == epochs[loaded.epoch]["metrics"]  # exact, every split
    payload = torch.load(run / MODELS_DIR / f"epoch-{best_epoch}.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in payload["state"].values())


def test_load_model_by_epoch_and_unpacking(run):
    model, transform = load_model(run, "last")
    last = read_manifest(run)["models"]["last"]["epoch"]
    same = load_model(run, last)
    x = torch.rand(2, 1, 12, 12)
    assert torch.equal(model(x), same.model(x))
    from PIL import Image

    assert transform(Image.new("RGB", (30, 20))).shape == (1, 12, 12)


def test_load_model_refusals_are_one_line(run, monkeypatch):
    with pytest.raises(CheckpointError, match="kept no 'swad' model; it kept: best, last") as err:
        load_model(run, "swad")
    assert "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match="epoch 99's model was not kept"):
        load_model(run, 99)
    import dagrad.networks

    def no_package(name):
        raise ModuleNotFoundError("No module named 'timm'", name="timm")

    monkeypatch.setattr(dagrad.networks, "network_entry", no_package)
    with pytest.raises(ConfigError, match="cannot rebuild the network 'digits_cnn'.*needs the package timm"):
        load_model(run, "best")


def test_a_tampered_kept_model_is_refused_in_one_line(run, tmp_path, capsys):
    from dagrad.cli import main

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    entry = read_manifest(copy)["models"]["best"]
    path = copy / MODELS_DIR / entry["file"]
    state = torch.load(path, weights_only=True)
    first = next(iter(state["state"]))
    state["state"][first] = state["state"][first] + 1  # a valid file, other weights
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="not the file the run wrote"):
        load_model(copy, "best")
    assert main(["predict", str(copy), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refusing" in err and "SHA-256" in err

    class Payload:  # a pickle that would run code; refused even when the manifest is made to agree
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"kind": "dagrad-kept-model", "state": Payload()}, path)
    manifest = json.loads((copy / MODELS_DIR / "kept.json").read_text())
    manifest["models"]["best"]["sha256"] = None
    (copy / MODELS_DIR / "kept.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="objects other than tensors"):
        load_model(copy, "best")
    assert "pwned" not in capsys.readouterr().out


def test_kept_models_survive_a_crash_between_model_and_checkpoint(tmp_path, monkeypatch, run):
    """Killed after epoch 1's model file is written but before its checkpoint: the resumed run keeps the
    same models as the uninterrupted one (files and manifest), with no orphan left."""
    import dagrad.run.engine

    real = dagrad.run.engine.Trainer._checkpoint

    def crash(self, next_epoch):
        if next_epoch == 2:
            raise KeyboardInterrupt
        real(self, next_epoch)

    monkeypatch.setattr(dagrad.run.engine.Trainer, "_checkpoint", crash)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "victim", "algorithm.hparams.lr=0.01")
    monkeypatch.setattr(dagrad.run.engine.Trainer, "_checkpoint", real)
    from dagrad.run.training import train_run as train_engine
    from dagrad.config.experiment import load_experiment

    train_engine(load_experiment(None, [*TINY, "algorithm.hparams.lr=0.01"]), tmp_path / "victim", resume=True,
                 progress=False)
    ours, theirs = read_manifest(tmp_path / "victim")["models"], read_manifest(run)["models"]
    assert {k: (e["epoch"], e["sha256"]) for k, e in ours.items()} == \
        {k: (e["epoch"], e["sha256"]) for k, e in theirs.items()}
    assert sorted(p.name for p in (tmp_path / "victim" / MODELS_DIR).iterdir()) == \
        sorted(p.name for p in (run / MODELS_DIR).iterdir())


def test_swad_keeps_its_average_and_it_reproduces_the_summary(tmp_path):
    folder = tmp_path / "swad"
    train(folder, "averaging.name=swad", "epochs=3", "averaging.options.n_converge=1",
          "averaging.options.n_tolerance=1", "checkpoints.keep=[swad,every]")
    _, epochs, summary = recorded(folder)
    manifest = read_manifest(folder)
    assert set(manifest["models"]) == {"swad", "epoch-0", "epoch-1", "epoch-2"}
    loaded = load_model(folder, "swad")
    assert loaded.epoch is None
    assert rescore(folder, loaded.model) == summary["metrics"]


def test_keep_nothing_writes_no_models(tmp_path):
    folder = tmp_path / "none"
    train(folder, "checkpoints.keep=[]", "epochs=1")
    assert not (folder / MODELS_DIR).exists()
    with pytest.raises(ConfigError, match="checkpoints.keep\\[0\\]: 'first' is not allowed"):
        train(tmp_path / "bad", "checkpoints.keep=[first]")
