"""Each of DomainBed's algorithms that dagrad adds trains on the digits through the engine with a sampled
epoch and SWAD, and a run interrupted after a checkpoint resumes to identical records (state carried
by the checkpoint: update counters, GroupDRO's q, MTL's embeddings, SagNet's style net, ...)."""

from __future__ import annotations

import importlib.util

import pytest

from dagrad.run.engine import Trainer
from dagrad.run.training import train_run
from dagrad.records.files import read_records, split_run

GRADSAMP = ["gradsamp.sampler=tensor", "gradsamp.schedule_options.start=2", "gradsamp.schedule_options.every=2",
            "gradsamp.buffers=extrapolate"]
SWAD = ["averaging.name=swad", "averaging.options.n_converge=2", "averaging.options.n_tolerance=2",
        "averaging.options.early_stop=false"]
# short warm-ups so the penalty switch (and its Adam reset) happens inside the tiny run
WARMUPS = {"irm": ["algorithm.hparams.irm_penalty_anneal_iters=4"],
           "vrex": ["algorithm.hparams.vrex_penalty_anneal_iters=4"],
           "ib_erm": ["algorithm.hparams.ib_penalty_anneal_iters=4"],
           "ib_irm": ["algorithm.hparams.irm_penalty_anneal_iters=4", "algorithm.hparams.ib_penalty_anneal_iters=5"],
           "eqrm": ["algorithm.hparams.eqrm_burnin_iters=4", "algorithm.hparams.eqrm_lr=1e-4"],
           "trm": ["algorithm.hparams.iters=4"],
           "transfer": ["algorithm.hparams.d_steps_per_g=2"],
           "rdm": ["algorithm.hparams.rdm_penalty_anneal_iters=4"],
           "adrmx": ["algorithm.hparams.mlp_depth=3", "algorithm.hparams.mlp_width=32"],
           "fishr": ["algorithm.hparams.penalty_anneal_iters=4"],
           "ermplusplus": ["algorithm.hparams.linear_steps=4"]}
FAST = ["irm", "vrex", "groupdro", "mixup", "mmd", "mtl", "rsc", "cdann", "sd", "ib_erm", "ib_irm", "causirl_coral",
        "causirl_mmd", "selfreg", "iga", "cad", "condcad", "eqrm", "transfer", "rdm", "urm", "ermplusplus",
        pytest.param("fishr", marks=pytest.mark.skipif(importlib.util.find_spec("backpack") is None,
                                                       reason="backpack-for-pytorch is not installed"))]
# several forward/backward passes per update (TRM: 30 head steps and Hessian products); ARM: a 64-channel context net
HEAVIER = ["mldg", "sagnet", "arm", "andmask", "fish", "sandmask", "trm", "adrmx"]


def _resume_matches_full(tiny_config, tmp_path, monkeypatch, algorithm: str) -> list[str]:
    overrides = [f"algorithm.name={algorithm}", "epochs=5", *GRADSAMP, *SWAD, *WARMUPS.get(algorithm, [])]
    full_records = read_records(train_run(tiny_config(*overrides), tmp_path / "full", progress=False))
    _, full, full_summary = split_run(full_records)
    original = Trainer._checkpoint

    def crash_after_epoch_2(self, next_epoch):
        original(self, next_epoch)
        if next_epoch == 3:
            raise KeyboardInterrupt  # as if the process died right after epoch 2's checkpoint

    monkeypatch.setattr(Trainer, "_checkpoint", crash_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train_run(tiny_config(*overrides), tmp_path / "cut", progress=False)
    monkeypatch.setattr(Trainer, "_checkpoint", original)
    train_run(tiny_config(*overrides), tmp_path / "cut", resume=True, progress=False)
    _, resumed, resumed_summary = split_run(read_records(tmp_path / "cut" / "records.jsonl"))
    keys = ("epoch", "kind", "metrics", "averaged_metrics", "update_stats", "updates")
    assert [{k: r[k] for k in keys} for r in resumed] == [{k: r[k] for k in keys} for r in full]
    assert resumed_summary["metrics"] == full_summary["metrics"]
    assert all(r["averager"] is not None for r in full)
    return [r["kind"] for r in full]


@pytest.mark.parametrize("algorithm", FAST)
def test_sampled_epoch_swad_and_resume(tiny_config, tmp_path, monkeypatch, algorithm):
    assert _resume_matches_full(tiny_config, tmp_path, monkeypatch, algorithm) == [
        "train", "train", "sampled", "train", "sampled"]


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", HEAVIER)
def test_sampled_epoch_swad_and_resume_heavier(tiny_config, tmp_path, monkeypatch, algorithm):
    assert _resume_matches_full(tiny_config, tmp_path, monkeypatch, algorithm) == [
        "train", "train", "sampled", "train", "sampled"]
