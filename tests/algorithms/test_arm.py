"""ARM: the context channel averaged per support set, the context net left unstepped (as in DomainBed),
its batch size of 8 on full-size images, DomainBed's draws."""

from __future__ import annotations

import torch
from helpers.domainbed_draws import assert_draws
from torch import nn

from dagrad.algorithms import build, resolve_hparams
from dagrad.algorithms.registry import featurizer_input_shape


class Recorder(nn.Module):
    """A featurizer that keeps what it was given."""

    def __init__(self, channels: int):
        super().__init__()
        self.n_outputs = 4
        self.linear = nn.Linear(channels * 4 * 4, 4)
        self.seen = None

    def forward(self, x):
        self.seen = x.detach().clone()
        return self.linear(x.flatten(1))


def _arm():
    torch.manual_seed(0)
    shape = (2, 4, 4)
    assert featurizer_input_shape("arm", shape) == (3, 4, 4)
    return build("arm", resolve_hparams("arm", {}, 0, small_images=True), Recorder(3), 3, 2, input_shape=shape)


def test_context_channel_is_the_support_sets_mean_context_map():
    algo = _arm().eval()
    algo._support = 2
    x = torch.randn(4, 2, 4, 4)
    with torch.no_grad():
        algo.predict(x)
        maps = algo.context_net(x)
    seen = algo.featurizer.seen
    assert torch.equal(seen[:, :2], x)
    for k in range(4):
        assert torch.allclose(seen[k, 2], maps[2 * (k // 2):2 * (k // 2) + 2, 0].mean(0))
    with torch.no_grad():
        algo.predict(x[:3])  # not a multiple of the support size: one support set
    assert torch.allclose(algo.featurizer.seen[0, 2], maps[:3, 0].mean(0), atol=1e-6)


def test_update_sets_the_support_size_and_leaves_the_context_net_unstepped():
    algo = _arm()
    before = [p.clone() for p in algo.context_net.parameters()]
    algo.update([(torch.randn(5, 2, 4, 4), torch.randint(0, 3, (5,))) for _ in range(2)])
    assert int(algo.support_size) == 5 and algo._support == 5
    assert all(torch.equal(a, b) for a, b in zip(before, algo.context_net.parameters()))
    fresh = _arm()
    fresh.load_state_dict(algo.state_dict())
    assert fresh._support == 5


def test_batch_size_is_eight_on_full_size_images_and_searched_on_digits():
    assert_draws("arm", "PACS", 0, 0, {"batch_size": 8})
    assert_draws("arm", "PACS", 2, 1, {"batch_size": 8, "lr": 0.0002692684204277505})
    assert_draws("arm", "RotatedMNIST", 1, 0, {"batch_size": 372, "lr": 0.00011906162909279594})
