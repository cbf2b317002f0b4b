"""The epoch loop: records, determinism, sampled epochs, checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from dagrad.run.engine import Trainer
from dagrad.run.training import train_run
from dagrad.utils.errors import CheckpointError, ConfigError
from dagrad.records.files import read_records, split_run


def epochs_of(path):
    return split_run(read_records(path))[1]


def test_records_have_the_documented_fields(tiny_config, tmp_path):
    path = train_run(tiny_config(), tmp_path / "run", progress=False)
    header, epochs, summary = split_run(read_records(path))
    assert header["config"]["algorithm"]["name"] == "erm" and header["data"]["steps_per_epoch"] == 3
    assert header["meter"] and header["versions"]["torch"] == torch.__version__
    assert [r["epoch"] for r in epochs] == [0, 1, 2] and [r["step"] for r in epochs] == [3, 6, 9]
    record = epochs[-1]
    assert record["kind"] == "train" and record["updates"] == 9
    assert set(record["metrics"]) == {f"env{i}_{s}_{m}" for i in range(6) for s in ("in", "out") for m in ("acc", "loss")}
    for phase in ("train", "eval"):
        components = record["energy"][phase]["components"]
        assert components and all(c["source"] and c["joules"] is not None for c in components.values())
    assert record["flops"]["train"] > 0 and record["flops"]["eval"] > 0 and record["flops"]["convention"]
    assert summary["type"] == "summary" and summary["reported"] == "online"
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


def test_same_seed_same_result_and_other_seed_differs(tiny_config, tmp_path):
    a = epochs_of(train_run(tiny_config(), tmp_path / "a", progress=False))
    b = epochs_of(train_run(tiny_config(), tmp_path / "b", progress=False))
    c = epochs_of(train_run(tiny_config("seed=1"), tmp_path / "c", progress=False))
    assert [r["metrics"] for r in a] == [r["metrics"] for r in b]
    assert [r["metrics"] for r in a] != [r["metrics"] for r in c]


def test_an_existing_run_is_never_overwritten(tiny_config, tmp_path):
    train_run(tiny_config(), tmp_path / "run", progress=False)
    before = (tmp_path / "run" / "records.jsonl").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run; pass --resume"):
        Trainer(tiny_config(), tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "records.jsonl").read_bytes() == before


def test_resume_refuses_another_configuration(tiny_config, tmp_path):
    train_run(tiny_config("epochs=2"), tmp_path / "run", progress=False)
    with pytest.raises(CheckpointError, match="different configuration"):
        Trainer(tiny_config("epochs=2", "algorithm.hparams.lr=0.1"), tmp_path / "run", resume=True, progress=False)


def test_truncated_checkpoint_is_a_clear_error(tiny_config, tmp_path):
    train_run(tiny_config(), tmp_path / "run", progress=False)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        Trainer(tiny_config(), tmp_path / "run", resume=True, progress=False)
    ckpt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        Trainer(tiny_config(), tmp_path / "run", resume=True, progress=False)
    ckpt.unlink()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        Trainer(tiny_config(), tmp_path / "run", resume=True, progress=False)


def test_sampled_epoch_does_no_forward_or_backward_pass(tiny_config, tmp_path, monkeypatch):
    """Count featurizer forwards during training windows: a sampled epoch must add none."""
    trainer = Trainer(tiny_config("epochs=4", "gradsamp.sampler=tensor", "gradsamp.schedule_options.start=2", "gradsamp.schedule_options.every=5"),
                      tmp_path / "run", progress=False)
    calls = {"update": 0, "forward": 0, "backward": 0}
    featurizer = trainer.algorithm.featurizer
    featurizer.register_forward_hook(lambda *a: calls.__setitem__("forward", calls["forward"] + 1))
    first_weight = next(featurizer.parameters())  # its gradient is computed once per backward pass
    first_weight.register_hook(lambda grad: calls.__setitem__("backward", calls["backward"] + 1))
    original = trainer.algorithm.update

    def counting_update(*args, **kwargs):
        calls["update"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer.algorithm, "update", counting_update)
    per_epoch = []
    original_train_or_sample = trainer._train_or_sample

    def spy(epoch):
        before = dict(calls)
        result = original_train_or_sample(epoch)
        per_epoch.append({k: calls[k] - before[k] for k in calls})
        return result

    monkeypatch.setattr(trainer, "_train_or_sample", spy)
    epochs = epochs_of(trainer.run())
    assert [r["kind"] for r in epochs] == ["train", "train", "sampled", "train"]
    assert per_epoch[2] == {"update": 0, "forward": 0, "backward": 0}
    assert per_epoch[1]["update"] == 3 and per_epoch[1]["forward"] >= 3 and per_epoch[1]["backward"] >= 3
    sampled = epochs[2]
    assert sampled["updates"] == 6 and sampled["step"] == 9  # the step count advances as if it had run
    assert sampled["flops"]["train"] == 0 and sampled["sampler"] == "tensor"
    assert sampled["sampler_stats"]["mean_abs_step"] > 0
    json.dumps(sampled)  # every field is JSON


def test_skip_control_keeps_parameters_and_costs_nothing(tiny_config, tmp_path):
    epochs = epochs_of(train_run(tiny_config("epochs=4", "gradsamp.sampler=skip", "gradsamp.schedule_options.start=2",
                                         "gradsamp.schedule_options.every=5"), tmp_path / "run", progress=False))
    assert [r["kind"] for r in epochs] == ["train", "train", "skipped", "train"]  # the control skips, never samples
    assert epochs[2]["metrics"] == epochs[1]["metrics"]  # theta_t = theta_{t-1}: same evaluation
    assert epochs[2]["sampler_stats"]["mean_abs_step"] == 0


def test_da_setting_trains(tiny_config, tmp_path):
    epochs = epochs_of(train_run(tiny_config("data.setting=da", "data.uda_holdout_fraction=0.2", "epochs=1"), tmp_path / "run", progress=False))
    assert epochs[0]["kind"] == "train"


def test_non_finite_draw_is_rejected_and_the_epoch_trains(tiny_config, tmp_path):
    epochs = epochs_of(train_run(tiny_config("epochs=3", "gradsamp.sampler=tensor", "gradsamp.schedule_options.start=2",
                                         "gradsamp.sampler_options.scale=1e308"), tmp_path / "run", progress=False))
    rejected = epochs[2]
    assert rejected["kind"] == "rejected" and rejected["fallback"] == "train"
    assert rejected["updates"] == 9 and rejected["update_stats"]["loss"] > 0  # the real epoch ran
    assert "finite" in rejected["sampler_stats"]["reason"]
    assert all(v is None or abs(v) < 1e6 for v in rejected["metrics"].values())


def test_guard_rejects_a_harmful_draw_and_keeps_theta(tiny_config, tmp_path):
    epochs = epochs_of(train_run(tiny_config("epochs=3", "gradsamp.sampler=tensor", "gradsamp.schedule_options.start=2",
                                         "gradsamp.sampler_options.scale=1e4", "gradsamp.guard=true",
                                         "gradsamp.guard_fallback=keep"), tmp_path / "run", progress=False))
    kept = epochs[2]
    assert kept["kind"] == "rejected" and kept["fallback"] == "keep" and kept["updates"] == 6
    assert kept["metrics"] == epochs[1]["metrics"]  # theta_{t-1} restored exactly
    guard_energy = kept["sampler_stats"]["guard_energy"]
    assert guard_energy["name"] == "guard" and guard_energy["components"]  # the guard's cost is metered


SCHEDULES = {
    "periodic": ["gradsamp.schedule=periodic", "gradsamp.schedule_options.start=2", "gradsamp.schedule_options.every=2"],
    "random": ["gradsamp.schedule=random", "gradsamp.schedule_options.probability=1.0", "gradsamp.max_consecutive=1"],
    "epochs": ["gradsamp.schedule=epochs", "gradsamp.schedule_options.epochs=[2,4]"],
}


@pytest.mark.parametrize("sampler", ["tensor", "element", "ggd", "extrapolate", "skip"])
@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_every_sampler_with_every_schedule(tiny_config, tmp_path, sampler, schedule):
    epochs = epochs_of(train_run(tiny_config("epochs=5", f"gradsamp.sampler={sampler}", *SCHEDULES[schedule]),
                             tmp_path / "run", progress=False))
    drawn = "skipped" if sampler == "skip" else "sampled"
    assert [r["kind"] for r in epochs] == ["train", "train", drawn, "train", drawn]
    for r in epochs:
        assert r["sampler"] == sampler and (r["sampler_stats"] is not None) == (r["kind"] == drawn)
    step = epochs[2]["sampler_stats"]["mean_abs_step"]
    assert step == 0 if sampler == "skip" else step > 0
