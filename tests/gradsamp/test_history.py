"""Epoch-end history: what is snapshotted, how counters move, and checkpoint round-trips."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from dagrad.run.epochs import EpochOutcome
from dagrad.utils.errors import CheckpointError
from dagrad.gradsamp import History


def net() -> nn.Module:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    m[0].bias.requires_grad_(False)
    return m


def test_snapshot_holds_trainable_params_and_float_buffers_as_copies():
    m, h = net(), History()
    h.push(m)
    assert sorted(h.prev.params) == ["0.weight", "1.bias", "1.weight", "2.bias", "2.weight"]
    assert sorted(h.prev.buffers) == ["1.running_mean", "1.running_var"]  # num_batches_tracked is integer
    with torch.no_grad():
        m[0].weight.add_(1.0)
    assert not torch.equal(h.prev.params["0.weight"], m[0].weight)  # a clone, not a view


def test_counters_and_delta():
    m, h = net(), History()
    h.push(m)
    assert not h.ready
    with torch.no_grad():
        m[2].bias.add_(0.5)
    h.push(m)
    assert h.ready and h.real_epochs == 2 and h.consecutive_sampled == 0
    deltas, buffer_deltas = h.deltas()
    assert torch.allclose(deltas["2.bias"], torch.full((2,), 0.5))
    assert torch.equal(deltas["0.weight"], torch.zeros(4, 3))
    h.push(m, EpochOutcome("sampled"))
    h.push(m, EpochOutcome("rejected", "keep"))
    assert h.consecutive_sampled == 2 and h.real_epochs == 2
    assert torch.equal(h.deltas()[0]["2.bias"], torch.zeros(2))  # sampled pushed, kept not
    h.push(m, EpochOutcome("rejected", "train"))  # the draw was refused and the epoch trained: a real epoch
    assert h.consecutive_sampled == 0 and h.real_epochs == 3
    with pytest.raises(ValueError, match="needs fallback 'train' or 'keep'"):
        EpochOutcome("rejected")


def test_state_dict_round_trip_through_torch_save():
    m, h = net(), History()
    h.push(m)
    with torch.no_grad():
        m[0].weight.mul_(2)
    h.push(m, EpochOutcome("sampled"))
    buf = io.BytesIO()
    torch.save(h.state_dict(), buf)
    buf.seek(0)
    h2 = History()
    h2.load_state_dict(torch.load(buf))
    assert (h2.real_epochs, h2.consecutive_sampled) == (1, 1)
    for a, b in zip(h.deltas()[0].values(), h2.deltas()[0].values()):
        assert torch.equal(a, b)
    with pytest.raises(CheckpointError):
        History().load_state_dict({"prev": None})


def test_model_change_is_reported():
    m, h = net(), History()
    h.push(m)
    h.push(nn.Linear(3, 4))
    with pytest.raises(RuntimeError, match="model changed"):
        h.deltas()
    with pytest.raises(RuntimeError, match="fewer than two"):
        History().deltas()
