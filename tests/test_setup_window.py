"""One-off start-up costs sit in a `setup` window beside epoch 0's `train`, and leave no trace in results."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from dagrad.run.engine import Trainer
from dagrad.run.training import train_run
from dagrad.run.numerics import Numerics
from dagrad.records.files import read_records, split_run
from dagrad.run.warmup import warm_up


def test_setup_is_its_own_window_in_the_first_epoch_record(tiny_config, tmp_path):
    path = train_run(tiny_config("epochs=2"), tmp_path / "run", progress=False)
    header, epochs, summary = split_run(read_records(path))
    first, second = epochs
    setup = first["energy"]["setup"]
    assert setup["name"] == "setup" and setup["warm_up"]["pass"] == "forward+backward"
    assert setup["warm_up"]["batch"][0] == header["data"]["batch_size"] * len(header["data"]["train_envs"])
    assert first["energy"]["train"]["name"] == "train" and "setup" not in second["energy"]
    assert "conditions" in setup and "conditions" in first["energy"]["train"]
    windows = [first["energy"][k]["seconds"] for k in ("setup", "train", "eval", "other")] + \
        [second["energy"][k]["seconds"] for k in ("train", "eval", "other")] + [summary["other_energy"]["seconds"]]
    assert summary["run_energy"]["seconds"] == pytest.approx(sum(windows))  # the run's sum includes setup
    assert header["compute"]["torch_threads"] == torch.get_num_threads() and header["compute"]["blas"]


def test_a_resumed_process_meters_its_own_setup(tiny_config, tmp_path, monkeypatch):
    out = tmp_path / "run"
    real = Trainer._train_or_sample

    def crash_in_epoch_1(self, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return real(self, epoch)

    monkeypatch.setattr(Trainer, "_train_or_sample", crash_in_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        train_run(tiny_config("epochs=2"), out, progress=False)
    monkeypatch.setattr(Trainer, "_train_or_sample", real)
    train_run(tiny_config("epochs=2"), out, resume=True, progress=False)
    epochs = split_run(read_records(out / "records.jsonl"))[1]
    assert [e["epoch"] for e in epochs] == [0, 1]
    assert [("setup" in e["energy"]) for e in epochs] == [True, True]  # each process's first epoch


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten(),
                                 nn.LazyLinear(3))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def test_the_warm_up_leaves_model_buffers_gradients_and_generators_as_they_were():
    torch.manual_seed(0)
    model = _Tiny()
    model.predict(torch.zeros(2, 1, 8, 8))  # materialise the lazy layer
    before = {k: v.clone() for k, v in model.state_dict().items()}
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    expected = (random.random(), np.random.rand(), torch.rand(1))
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    done = warm_up(model, (1, 8, 8), 5, torch.device("cpu"), Numerics(torch.device("cpu"), "torch_default", True, False))
    assert done == {"batch": [5, 1, 8, 8], "pass": "forward+backward"}
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected
