"""Trackers mirror the records: TensorBoard event files and offline W&B runs hold the records' numbers
(read back with each package's own reader, skipped when it is not installed); a missing package is one
line naming the extra; a failing tracker never stops the run; only rank 0 writes."""

from __future__ import annotations

import io
import sys
from contextlib import redirect_stderr, redirect_stdout

import pytest

import dagrad
from dagrad import cli
from dagrad.run import engine
from dagrad.config.schema import TrackingConfig, WandbConfig
from dagrad.records.files import RecordFile
from dagrad.tracking import Trackers

TINY = dict(data__image_size=12, network__options__width=8, data__batch_size=8, steps_per_epoch=3,
            data__eval_batch_size=512, epochs=4, gradsamp={"sampler": "tensor", "schedule_options": {"start": 2, "every": 2}})


def scalars(folder) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_holds_the_records_numbers(tmp_path):
    pytest.importorskip("tensorboard")
    run = dagrad.train(out=tmp_path / "run", progress=False, tracking__tensorboard=True, **TINY)
    tb = scalars(tmp_path / "run" / "tensorboard")
    steps = run.epochs["step"].tolist()
    for tag, column in (("accuracy/ood_acc", "ood_acc"), ("accuracy/env0_out_acc", "env0_out_acc"),
                        ("loss/train_loss", "train_loss"), ("loss/env5_in_loss", "env5_in_loss"),
                        ("energy/train_J", "train_J"), ("energy/eval_J", "eval_J"), ("energy/cum_J", "cum_J"),
                        ("progress/updates", "updates"), ("progress/sampled", "sampled"),
                        ("flops/train_flops", "train_flops")):
        frame = run.epochs[["step", column]].dropna()
        assert [s for s, _ in tb[tag]] == frame["step"].tolist(), tag
        assert [v for _, v in tb[tag]] == pytest.approx(frame[column].tolist(), rel=1e-6), tag
    assert [s for s, _ in tb["gradsamp/gradsamp_step_norm"]] == [steps[2]]  # the sampled epoch's draw
    assert tb["gradsamp/gradsamp_step_norm"][0][1] == pytest.approx(run.epochs["gradsamp_step_norm"][2], rel=1e-6)


def test_tensorboard_after_a_resume_shows_each_epoch_once(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    original = engine.Trainer._checkpoint

    def crash(self, next_epoch):
        if next_epoch == 3:
            raise KeyboardInterrupt
        original(self, next_epoch)

    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        m.setattr(engine.Trainer, "_checkpoint", crash)
        dagrad.train(out=tmp_path / "run", progress=False, tracking__tensorboard=True, **TINY)
    run = dagrad.train(out=tmp_path / "run", resume=True, progress=False)
    tb = scalars(tmp_path / "run" / "tensorboard")
    assert [s for s, _ in tb["accuracy/ood_acc"]] == run.epochs["step"].tolist()
    assert [v for _, v in tb["accuracy/ood_acc"]] == pytest.approx(run.epochs["ood_acc"].tolist(), rel=1e-6)


def test_wandb_offline_writes_the_records_numbers_in_the_run_folder(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from helpers.wandb_records import history

    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home"))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    run = dagrad.train(out=tmp_path / "run", progress=False, tracking__wandb__project="dagrad-tests", **TINY)
    files = list((tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    rows = history(files[0])
    assert [r["_step"] for r in rows] == run.epochs["step"].tolist()
    assert [r["accuracy/ood_acc"] for r in rows] == pytest.approx(run.epochs["ood_acc"].tolist())
    assert [r["energy/cum_J"] for r in rows] == pytest.approx(run.epochs["cum_J"].tolist())
    assert "gradsamp/gradsamp_step_norm" in rows[2] and "gradsamp/gradsamp_step_norm" not in rows[1]


@pytest.mark.parametrize("setting, module, package", [("tracking.tensorboard=true", "torch.utils.tensorboard",
                                                       "tensorboard"),
                                                      ("tracking.wandb.project=p", "wandb", "wandb")])
def test_a_missing_package_stops_with_one_line_naming_the_extra(tmp_path, monkeypatch, setting, module, package):
    monkeypatch.setitem(sys.modules, module, None)  # importing it now raises ImportError
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        code = cli.main(["train", "--quiet", "--out", str(tmp_path / "run"), setting, "epochs=1", "steps_per_epoch=1"])
    assert code == 2
    name = setting.split("=")[0].removesuffix(".project")
    assert err.getvalue().strip().splitlines()[-1] == (
        f"dagrad: error: {name} needs the {package} package, which is not installed: pip install "
        f"'dagrad[tracking]' (or leave {name} off)")
    assert not (tmp_path / "run").exists()


class FakeTracker:
    name = "fake"

    def __init__(self, fail_at=None):
        self.calls, self.fail_at = [], fail_at

    def open(self, header, recorded):
        self.calls.append(("open", [step for step, _ in recorded]))

    def epoch(self, step, values):
        if step == self.fail_at:
            raise OSError("disk full")
        self.calls.append(("epoch", step, values["accuracy"]["ood_acc"]))

    def finish(self, step, values):
        self.calls.append(("finish", step))

    def close(self):
        self.calls.append(("close",))


def _records(tmp_path, epochs: int) -> RecordFile:
    header = {"type": "header", "data": {"test_envs": [1], "train_envs": [0]}, "config": {}, "run_id": "x"}
    lines = [header] + [{"type": "epoch", "epoch": e, "step": 10 * (e + 1), "updates": 10 * (e + 1),
                         "metrics": {"env1_in_acc": e / 10, "env0_out_acc": 0.5}} for e in range(epochs)]
    return RecordFile(tmp_path / "records.jsonl", lines)


def test_trackers_replay_then_follow_and_a_failing_one_is_switched_off(tmp_path, monkeypatch):
    good, bad = FakeTracker(), FakeTracker(fail_at=40)
    monkeypatch.setattr("dagrad.tracking.build_trackers", lambda settings, folder: [good, bad])
    trackers = Trackers(TrackingConfig(tensorboard=True), tmp_path)
    records = _records(tmp_path, 2)
    trackers.start(records)
    with pytest.warns(RuntimeWarning, match=r"tracking: fake failed \(OSError: disk full\); it is off"):
        for e in (2, 3):
            records.append({"type": "epoch", "epoch": e, "step": 10 * (e + 1), "updates": 0,
                            "metrics": {"env1_in_acc": e / 10}})
    records.append({"type": "summary", "metrics": {"env1_in_acc": 0.9, "env0_out_acc": 0.8}})
    trackers.close()
    assert good.calls == [("open", [10, 20]), ("epoch", 30, 0.2), ("epoch", 40, 0.3), ("finish", 40), ("close",)]
    assert bad.calls == [("open", [10, 20]), ("epoch", 30, 0.2), ("close",)]
    assert len(records.lines) == 6 and (tmp_path / "records.jsonl").read_text().count("\n") == 6


def test_only_rank_zero_writes(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # other ranks do not even need the packages
    settings = TrackingConfig(tensorboard=True, wandb=WandbConfig(project="p"))
    assert not Trackers(settings, tmp_path, rank=1)
    with pytest.raises(dagrad.ConfigError, match="tracking.wandb needs the wandb package"):
        Trackers(TrackingConfig(wandb=WandbConfig(project="p")), tmp_path, rank=0)
