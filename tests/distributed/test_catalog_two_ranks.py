"""DomainBed's catalog on two gloo ranks: each algorithm trains with a sampled epoch, and the ranks'
parameters and buffers agree after every epoch (DAGRAD_DIST_CHECK=1 fails the job otherwise). Extra
state computed per rank (GroupDRO's q, MTL's embeddings, BatchNorm statistics of ARM's context net and
SelfReg's projection) is a floating buffer, averaged over the ranks at each epoch's end like BatchNorm's."""

from __future__ import annotations

import importlib.util

import pytest
from distributed.test_two_ranks import two_ranks

from dagrad.records.files import split_run

CATALOG = ["irm", "vrex", "groupdro", "mixup", "mmd", "mtl", "mldg", "cdann", "sagnet", "arm", "rsc", "sd",
           "andmask", "sandmask", "iga", "ib_erm", "ib_irm", "causirl_coral", "causirl_mmd", "selfreg", "fish",
           "cad", "condcad", "eqrm", "trm", "transfer", "rdm", "urm", "adrmx", "ermplusplus",
           pytest.param("fishr", marks=pytest.mark.skipif(importlib.util.find_spec("backpack") is None,
                                                          reason="backpack-for-pytorch is not installed"))]

# short warm-ups so the second phase runs on two ranks too
WARMUPS = {"eqrm": ["algorithm.hparams.eqrm_burnin_iters=3"], "trm": ["algorithm.hparams.iters=3"],
           "rdm": ["algorithm.hparams.rdm_penalty_anneal_iters=3"],
           "fishr": ["algorithm.hparams.penalty_anneal_iters=3"],
           "ermplusplus": ["algorithm.hparams.linear_steps=2"]}


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", CATALOG)
def test_catalog_algorithm_on_two_ranks_with_a_sampled_epoch(tmp_path, algorithm):
    overrides = [f"algorithm.name={algorithm}", "epochs=4", "steps_per_epoch=2", "gradsamp.sampler=tensor",
                 "gradsamp.schedule_options.start=2", "gradsamp.schedule_options.every=2",
                 *WARMUPS.get(algorithm, [])]
    lines, _ = two_ranks(tmp_path / "two", overrides)
    header, epochs, _ = split_run(lines)
    assert header["distributed"]["world_size"] == 2 and header["distributed"]["checked_every_epoch"]
    assert [e["kind"] for e in epochs] == ["train", "train", "sampled", "train"]
    assert all(e["sampler_stats"]["ranks_agreed"] for e in epochs if e["kind"] == "sampled")
