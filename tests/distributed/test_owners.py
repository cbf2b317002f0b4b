"""What a job of several processes does with the collectives, each at its owner (dagrad.gradsamp.ranks,
dagrad.energy.ranks, dagrad.records.distributed_section, dagrad.run.folder.shared_run_folder), checked with a
rank whose collectives the test answers (no process group); test_collectives.py runs them on real ranks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dagrad.energy.ranks import summed_over_ranks
from dagrad.energy.reading import ComponentEnergy, Reading
from dagrad.gradsamp.ranks import settle_draw
from dagrad.records.distributed_section import distributed_section
from dagrad.run.distributed import Distributed
from dagrad.run.epochs import EpochKind, EpochOutcome
from dagrad.run.folder import shared_run_folder
from dagrad.utils.errors import CheckpointError


class AnsweredRanks(Distributed):
    """Rank `rank` of `world`: gathers return `others` after this rank's object, broadcasts return `sent`
    (or what this rank sends), and every rank agrees unless told otherwise."""

    def __init__(self, rank=0, world=2, others=(), sent=None, agree=True):
        super().__init__(rank, world)
        self.others, self.sent, self.agree, self.calls = list(others), sent, agree, []

    def gather_objects(self, obj):
        self.calls.append("gather")
        return [obj, *self.others]

    def broadcast_object(self, obj):
        self.calls.append("broadcast")
        return obj if self.sent is None else self.sent

    def same_everywhere(self, values):
        self.calls.append("same")
        return self.agree

    def barrier(self):
        self.calls.append("barrier")


def _reading(joules: float, seconds: float) -> Reading:
    return Reading("train", seconds, 1.0, {"cpu": ComponentEnergy(joules, "rapl")})


def test_readings_are_summed_over_the_ranks_through_one_gather():
    dist = AnsweredRanks(others=[[_reading(5.0, 3.0).to_dict(), _reading(1.0, 1.0).to_dict()]])
    train, evaluation = summed_over_ranks(dist, _reading(2.0, 2.0), _reading(0.5, 1.0))
    assert (train.joules, train.seconds, train.cpu_seconds) == (7.0, 3.0, 2.0)
    assert evaluation.joules == 1.5 and train.components["cpu"].params == {"ranks": 2}
    assert dist.calls == ["gather"]
    alone = _reading(2.0, 2.0)
    assert summed_over_ranks(Distributed(), alone) == (alone,)  # one process: as it is


def test_the_header_section_names_every_rank_and_what_its_meter_covers():
    class Meter:
        def describe(self):
            return {"selected": ["nvml", "rapl"], "estimated": False}

    other = {"host": "node-b", "device": "cuda:0", "meter": ["cputime"], "estimated": True}
    section = distributed_section(AnsweredRanks(others=[other]), Meter(), torch.device("cuda", 0))
    assert section["world_size"] == 2 and section["ranks"][1] == other
    assert section["ranks"][0]["meter"] == ["nvml", "rapl"] and section["ranks"][0]["device"] == "cuda:0"
    assert section["energy"] == {"processes": 2, "nodes": 2, "gpus_metered": 1, "nodes_metered_by_rapl": 1,
                                 "processes_estimated": 1}
    assert distributed_section(Distributed(), Meter(), torch.device("cpu")) is None


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.opt = torch.optim.SGD(self.parameters(), lr=0.1)

    def optimizers(self):
        return {"sgd": self.opt}


def test_a_draw_every_rank_agrees_on_is_kept_and_marked():
    dist = AnsweredRanks(agree=True)
    outcome = settle_draw(dist, EpochOutcome(EpochKind.SAMPLED, None, {"x": 1}), Model())
    assert outcome.kind == EpochKind.SAMPLED and outcome.sampler_stats == {"x": 1, "ranks_agreed": True}
    assert dist.calls == ["same"]  # no broadcast when the ranks agree
    alone = EpochOutcome(EpochKind.SAMPLED, None, {"x": 1})
    assert settle_draw(Distributed(), alone, Model()).sampler_stats == {"x": 1}


def test_rank_zeros_refusal_of_the_folder_is_raised_on_the_other_ranks(tmp_path):
    dist = AnsweredRanks(rank=1, sent=("error", "CheckpointError", "cannot resume: nothing there"))
    with pytest.raises(CheckpointError, match="^cannot resume: nothing there$"):
        with shared_run_folder(dist, tmp_path / "run", resume=True):
            pass
    assert not (tmp_path / "run").exists()  # only rank 0 touches the folder
    dist = AnsweredRanks(rank=1, sent=("ok", True))
    with shared_run_folder(dist, tmp_path / "run", resume=True) as resume:
        assert resume is True
    assert dist.calls == ["broadcast", "barrier"]  # rank 0 keeps the lock until every rank is done


def test_one_process_opens_the_folder_itself(tmp_path):
    with shared_run_folder(Distributed(), tmp_path / "run") as resume:
        assert resume is False and (tmp_path / "run").is_dir()
    with pytest.raises(CheckpointError, match="holds no run"):
        with shared_run_folder(Distributed(), tmp_path / "empty", resume=True):
            pass
