"""The engine's cost accounting and its lean step loop: every second of a job is metered (checkpoints
included), the step statistics are read once per epoch, the precision settings do what they say."""

from __future__ import annotations

import time

import pytest
import torch

from dagrad.run import engine
from dagrad.run.engine import Trainer
from dagrad.run.training import train_run
from dagrad.run.epochs import StepSums
from dagrad.records.files import read_records, split_run


def test_the_run_window_accounts_for_checkpoint_time(tiny_config, tmp_path, monkeypatch):
    real_save = engine.save_checkpoint

    def slow_save(path, payload):
        time.sleep(0.3)
        real_save(path, payload)

    monkeypatch.setattr(engine, "save_checkpoint", slow_save)
    started = time.perf_counter()
    path = train_run(tiny_config("energy.idle_baseline_s=0.2"), tmp_path / "run", progress=False)
    wall = time.perf_counter() - started
    header, epochs, summary = split_run(read_records(path))
    others = [r["energy"]["other"]["seconds"] for r in epochs]
    assert all(s >= 0.3 for s in others[1:]) and summary["other_energy"]["seconds"] >= 0.3  # each checkpoint
    assert others[0] > 0  # the first holds startup (data, model, meter), before any checkpoint
    assert header["idle_power"]["seconds"] >= 0.2
    assert "setup" in epochs[0]["energy"] and all("setup" not in r["energy"] for r in epochs[1:])
    parts = sum(r["energy"][k]["seconds"] for r in epochs for k in ("setup", "train", "eval", "other") if k in r["energy"])
    parts += summary["other_energy"]["seconds"] + header["idle_power"]["seconds"]
    run = summary["run_energy"]
    assert run["seconds"] == pytest.approx(parts, rel=1e-9)
    assert 0.8 * wall < run["seconds"] <= wall  # the job's windows cover (nearly) all of its wall time
    cpu = run["components"]["cpu"]
    assert cpu["joules"] == pytest.approx(sum(r["energy"][k]["components"]["cpu"]["joules"] for r in epochs
                                              for k in ("setup", "train", "eval", "other") if k in r["energy"])
                                          + summary["other_energy"]["components"]["cpu"]["joules"]
                                          + header["idle_power"]["reading"]["components"]["cpu"]["joules"])


def test_step_sums_equal_the_host_sums_of_item_values():
    g = torch.Generator().manual_seed(0)
    values = [torch.rand((), generator=g) * 10 for _ in range(1000)]
    sums = StepSums()
    for k, v in enumerate(values):
        sums.add({"loss": v, "host": 0.5 * k, **({"disc": v * 2} if k % 2 else {})})
    means = sums.means()
    reference = 0.0
    for v in values:
        reference += v.item()
    assert means["loss"] == reference / 1000  # exactly: float64 on the device = Python floats on the host
    assert means["host"] == sum(0.5 * k for k in range(1000)) / 1000
    odd = 0.0
    for v in values[1::2]:
        odd += (v * 2).item()
    assert means["disc"] == odd / 500


@pytest.mark.parametrize("algorithm", ["erm", "coral", "dann", "dann_grl"])
def test_updates_return_tensors_and_the_epoch_reads_them_once(tiny_config, tmp_path, monkeypatch, algorithm):
    trainer = Trainer(tiny_config(f"algorithm.name={algorithm}", "epochs=2", "data.setting=da",
                                "data.uda_holdout_fraction=0.2"), tmp_path / "r",
                      progress=False)
    returned, reads = [], []
    update = trainer.algorithm.update

    def spy(*args, **kwargs):
        out = update(*args, **kwargs)
        returned.append(out)
        return out

    monkeypatch.setattr(trainer.algorithm, "update", spy)
    means = StepSums.means
    monkeypatch.setattr(StepSums, "means", lambda self: reads.append(1) or means(self))
    trainer.run()
    tensors = [v for out in returned for k, v in out.items() if k != "grl_coeff"]
    assert tensors and all(isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad for v in tensors)
    assert len(returned) == 6 and len(reads) == 2


def test_dann_schedule_survives_a_state_dict_round_trip(tiny_config, tmp_path):
    trainer = Trainer(tiny_config("algorithm.name=dann", "epochs=1"), tmp_path / "r", progress=False)
    trainer.run()
    model = trainer.algorithm
    assert model.updates_done == 3 and int(model.update_count) == 3
    fresh = Trainer(tiny_config("algorithm.name=dann", "epochs=1"), tmp_path / "s", progress=False).algorithm
    fresh.load_state_dict(model.state_dict())
    assert fresh.updates_done == 3


def _comparable(path):
    _, epochs, summary = split_run(read_records(path))
    return [(r["metrics"], r["update_stats"]) for r in epochs]


def test_bf16_trains_with_float32_parameters_deterministically(tiny_config, tmp_path):
    a = train_run(tiny_config("precision=bf16", "device=cpu"), tmp_path / "a", progress=False)
    b = train_run(tiny_config("precision=bf16", "device=cpu"), tmp_path / "b", progress=False)
    full = train_run(tiny_config("device=cpu"), tmp_path / "full", progress=False)
    assert _comparable(a) == _comparable(b)  # bit-identical on CPU for a fixed seed
    assert _comparable(a) != _comparable(full)  # bfloat16 really ran
    header = read_records(a)[0]
    assert header["numerics"]["precision"] == "bf16" and header["numerics"]["autocast"] == "bfloat16"
    assert read_records(full)[0]["numerics"]["precision"] == "torch_default"
    trainer = Trainer(tiny_config("precision=bf16", "epochs=1"), tmp_path / "c", progress=False)
    trainer.run()
    assert all(p.dtype == torch.float32 for p in trainer.algorithm.parameters())
    state = trainer.algorithm.optimizer.state_dict()["state"]
    assert all(s["exp_avg"].dtype == torch.float32 for s in state.values())


def test_cpu_precisions_without_tf32_compute_the_same(tiny_config, tmp_path):
    default = train_run(tiny_config("epochs=2", "device=cpu"), tmp_path / "a", progress=False)
    strict = train_run(tiny_config("epochs=2", "precision=fp32_strict", "device=cpu"), tmp_path / "b", progress=False)
    assert _comparable(default) == _comparable(strict)


def test_channels_last_for_a_convolutional_backbone(tiny_config, tmp_path):
    trainer = Trainer(tiny_config("channels_last=true", "epochs=2"), tmp_path / "r", progress=False)
    path = trainer.run()
    conv = next(p for p in trainer.algorithm.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    header, epochs, _ = split_run(read_records(path))
    assert header["numerics"]["channels_last_applied"] is True
    assert all(v is not None for v in epochs[-1]["metrics"].values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_step_loop_never_syncs(tiny_config, tmp_path, monkeypatch):
    trainer = Trainer(tiny_config("device=cuda", "epochs=2", "energy.count_flops=false"), tmp_path / "r",
                      progress=False)
    means = StepSums.means

    def read(self):
        torch.cuda.set_sync_debug_mode("default")
        try:
            return means(self)
        finally:
            torch.cuda.set_sync_debug_mode("error")

    steps = Trainer._train_steps

    def strict(self, epoch):
        torch.cuda.set_sync_debug_mode("error")  # any synchronising call in the loop raises
        try:
            return steps(self, epoch)
        finally:
            torch.cuda.set_sync_debug_mode("default")

    monkeypatch.setattr(StepSums, "means", read)
    monkeypatch.setattr(Trainer, "_train_steps", strict)
    trainer.run()
    assert read_records(tmp_path / "r" / "records.jsonl")[0]["loading"]["pin_memory"] is True
