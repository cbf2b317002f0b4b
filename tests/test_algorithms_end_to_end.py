"""Every algorithm, with and without GradSamp and SWAD, in DG and (where it applies) DA, trains on the
digits through the engine, and an interrupted run resumes to identical records."""

from __future__ import annotations

import pytest

from dagrad.run.engine import Trainer
from dagrad.run.training import train_run
from dagrad.records.files import read_records, split_run

GRADSAMP = ["gradsamp.sampler=tensor", "gradsamp.schedule_options.start=2", "gradsamp.schedule_options.every=2"]
SWAD = ["averaging.name=swad", "averaging.options.n_converge=2", "averaging.options.n_tolerance=2"]


def run(tiny_config, tmp_path, name, *overrides):
    return split_run(read_records(train_run(tiny_config(*overrides), tmp_path / name, progress=False)))


@pytest.mark.parametrize("algorithm", ["erm", "coral", "dann", "dann_grl"])
@pytest.mark.parametrize("setting", ["dg", "da"])
@pytest.mark.parametrize("gradsamp", [False, True])
def test_algorithm_runs(tiny_config, tmp_path, algorithm, setting, gradsamp):
    overrides = [f"algorithm.name={algorithm}", f"data.setting={setting}", "epochs=4"] + (GRADSAMP if gradsamp else [])
    overrides += ["data.uda_holdout_fraction=0.2"] if setting == "da" else []
    header, epochs, summary = run(tiny_config, tmp_path, "run", *overrides)
    kinds = [r["kind"] for r in epochs]
    assert kinds == (["train", "train", "sampled", "train"] if gradsamp else ["train"] * 4)
    assert all(r["update_stats"] for r, k in zip(epochs, kinds) if k == "train")
    accuracies = [r["metrics"]["env5_in_acc"] for r in epochs]
    assert all(0.0 <= a <= 1.0 for a in accuracies)


@pytest.mark.parametrize("algorithm", ["erm", "coral", "dann", "dann_grl"])
def test_swad_wraps_every_algorithm_with_gradsamp(tiny_config, tmp_path, algorithm):
    header, epochs, summary = run(tiny_config, tmp_path, "run", f"algorithm.name={algorithm}", "epochs=6",
                                  *GRADSAMP, *SWAD, "averaging.options.early_stop=false")
    assert [r["kind"] for r in epochs].count("sampled") == 2
    assert all(r["averager"] is not None for r in epochs)
    assert summary["reported"] == "averaged" and summary["metrics"]["env5_in_acc"] >= 0.0
    assert summary["averager"]["n_averaged"] >= 1


@pytest.mark.parametrize("algorithm", ["erm", "coral", "dann", "dann_grl"])
def test_interrupted_run_resumes_identically(tiny_config, tmp_path, algorithm, monkeypatch):
    overrides = [f"algorithm.name={algorithm}", "epochs=6", "data.setting=da", "data.uda_holdout_fraction=0.2",
                 *GRADSAMP, *SWAD,
                 "averaging.options.early_stop=false"]
    _, full, full_summary = run(tiny_config, tmp_path, "full", *overrides)

    original = Trainer._checkpoint

    def crash_after_epoch_3(self, next_epoch):
        original(self, next_epoch)
        if next_epoch == 3:
            raise KeyboardInterrupt  # as if the process died right after epoch 2's checkpoint

    monkeypatch.setattr(Trainer, "_checkpoint", crash_after_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train_run(tiny_config(*overrides), tmp_path / "cut", progress=False)
    monkeypatch.setattr(Trainer, "_checkpoint", original)
    train_run(tiny_config(*overrides), tmp_path / "cut", resume=True, progress=False)
    _, resumed, resumed_summary = split_run(read_records(tmp_path / "cut" / "records.jsonl"))
    keys = ("epoch", "kind", "metrics", "averaged_metrics", "update_stats", "updates")
    assert [{k: r[k] for k in keys} for r in resumed] == [{k: r[k] for k in keys} for r in full]
    assert resumed_summary["metrics"] == full_summary["metrics"]


def test_swad_reestimates_batchnorm_of_the_average_when_bn_is_not_frozen(tiny_config, tmp_path):
    """khanrc/swad's update_bn: with freeze_bn false the averaged model's BatchNorm statistics are recomputed
    over training batches, metered in the `averaging` window; with frozen BN nothing is run. An epoch of 2
    steps is shorter than the 5 re-estimation steps asked for: the stream continues past the last epoch."""
    resnet = ["network.name=resnet18", "data.image_size=8", "data.options.angles=[0, 75]", "data.test_envs=[1]",
              "eval_mode=fast", "epochs=2", "steps_per_epoch=2", *SWAD, "averaging.options.early_stop=false",
              "averaging.options.update_bn_steps=5", "energy.count_flops=false", "data.eval_batch_size=1024"]
    _, _, free = run(tiny_config, tmp_path, "free", *resnet, "network.options={freeze_bn: false}")
    assert free["averager"]["bn_steps"] == 5
    assert free["averaging_energy"]["seconds"] > 0 and free["averaging_energy"]["joules"] is not None
    _, _, frozen = run(tiny_config, tmp_path, "frozen", *resnet, "network.options={freeze_bn: true}")
    assert frozen["averager"]["bn_steps"] == 0 and "averaging_energy" in frozen
