"""update_bn: BatchNorm statistics recomputed for given weights, frozen BatchNorm left alone, modes kept."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dagrad.averaging.update_bn import update_bn, updating_batchnorms
from dagrad.networks.featurizers import _FrozenBatchNormMixin

T = torch.tensor


class Net(nn.Module):
    """z = (2 x0 + 1, x1) -> dropout -> BatchNorm -> linear; `predict` as an Algorithm has."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Linear(2, 2)
        self.drop = nn.Dropout(0.9)  # would wreck the statistics if it were left in train mode
        self.bn = nn.BatchNorm1d(2, momentum=0.3)
        self.head = nn.Linear(2, 1)
        with torch.no_grad():
            self.scale.weight.copy_(T([[2.0, 0.0], [0.0, 1.0]]))
            self.scale.bias.copy_(T([1.0, 0.0]))
            self.bn.running_mean.fill_(100.0)
            self.bn.running_var.fill_(100.0)

    def predict(self, x):
        return self.head(self.bn(self.drop(self.scale(x))))


class FrozenFeaturizer(_FrozenBatchNormMixin, nn.Module):
    def __init__(self):
        super().__init__()
        self.freeze_bn = True
        self.bn = nn.BatchNorm1d(2)
        with torch.no_grad():
            self.bn.running_mean.fill_(7.0)

    def forward(self, x):
        return self.bn(x)


# two steps, each a list of per-environment inputs; a third that must not be read
BATCHES = [
    [T([[0.0, 1.0], [1.0, 3.0]]), T([[2.0, 0.0]])],  # z: (1, 1), (3, 3), (5, 0)
    [T([[1.0, 1.0]]), T([[3.0, 2.0], [0.0, 0.0]])],  # z: (3, 1), (7, 2), (1, 0)
    [T([[50.0, 50.0]]), T([[60.0, 60.0]])],
]


def test_statistics_are_the_cumulative_average_over_the_batches_fed():
    net = Net()
    net.train()
    net.head.eval()
    stream = iter(BATCHES)
    assert update_bn(net, stream, steps=2) == 2
    assert next(stream) is BATCHES[2]  # exactly `steps` batches were read
    # step 1: channel 0 = 1, 3, 5 -> mean 3, unbiased var 4; channel 1 = 1, 3, 0 -> mean 4/3, var 7/3
    # step 2: channel 0 = 3, 7, 1 -> mean 11/3, var 28/3; channel 1 = 1, 2, 0 -> mean 1, var 1
    # momentum None: equal-weight average of the per-step statistics
    assert torch.allclose(net.bn.running_mean, T([(3 + 11 / 3) / 2, (4 / 3 + 1) / 2]))
    assert torch.allclose(net.bn.running_var, T([(4 + 28 / 3) / 2, (7 / 3 + 1) / 2]))
    assert int(net.bn.num_batches_tracked) == 2
    assert net.bn.momentum == 0.3  # restored
    assert net.training and net.drop.training and net.bn.training and not net.head.training
    assert all(p.grad is None for p in net.parameters())


def test_inputs_may_come_as_labelled_pairs_and_the_module_may_be_in_eval_mode():
    net = Net().eval()
    pairs = [[(x, torch.zeros(len(x))) for x in step] for step in BATCHES[:2]]
    assert update_bn(net, pairs, steps=500) == 2  # fewer batches than steps: as many as there are
    assert torch.allclose(net.bn.running_mean, T([10 / 3, 7 / 6]))
    assert not any(m.training for m in net.modules())


def test_frozen_batchnorm_is_left_untouched():
    frozen = nn.Sequential(FrozenFeaturizer(), nn.Linear(2, 2)).eval()
    assert updating_batchnorms(frozen) == [] and not frozen.training  # modes restored after the probe
    stream = iter(BATCHES)
    assert update_bn(frozen, stream, steps=2) == 0
    assert next(stream) is BATCHES[0]  # nothing read
    assert torch.equal(frozen[0].bn.running_mean, torch.full((2,), 7.0))
    assert int(frozen[0].bn.num_batches_tracked) == 0


def test_only_the_batchnorm_layers_that_update_in_train_mode_are_recomputed():
    mixed = nn.Sequential(FrozenFeaturizer(), nn.BatchNorm1d(2))
    assert updating_batchnorms(mixed) == [mixed[1]]
    update_bn(mixed, BATCHES, steps=1)
    assert torch.equal(mixed[0].bn.running_mean, torch.full((2,), 7.0))
    # the frozen layer normalises with mean 7, var 1 (eps aside): the second sees x - 7
    assert torch.allclose(mixed[1].running_mean, T([1.0 - 7.0, 4 / 3 - 7.0]), atol=1e-4)


@pytest.mark.parametrize("batches, steps", [([], 5), (BATCHES, 0)])
def test_no_batch_or_no_step_changes_nothing(batches, steps):
    net = Net()
    assert update_bn(net, batches, steps) == 0
    assert torch.equal(net.bn.running_mean, torch.full((2,), 100.0)) and int(net.bn.num_batches_tracked) == 0
