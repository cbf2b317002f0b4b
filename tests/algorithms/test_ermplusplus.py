"""ERM++: the linear probe, the moving average, LARS's step and the plateau schedule from their
definitions, DomainBed's draws."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams
from dagrad.algorithms.ermplusplus import LARS


def _setup(**overrides):
    hp = resolve_hparams("ermplusplus", {"linear_steps": 1, **overrides}, 0, small_images=True)
    algo = build("ermplusplus", hp, featurizer(), 3, 2)
    g = torch.Generator().manual_seed(12)
    return algo, [(torch.randn(4, 6, generator=g), torch.randint(0, 3, (4,), generator=g)) for _ in range(2)]


def test_linear_probe_then_the_whole_network():
    algo, batches = _setup()
    moved = []
    for _ in range(3):
        before = copy.deepcopy(algo.featurizer.state_dict())
        algo.update(batches)
        moved.append(any(not torch.equal(before[k], v) for k, v in algo.featurizer.state_dict().items()))
    assert moved == [False, False, True]  # updates done 0 and 1 (<= linear_steps) probe; then everything


def test_moving_average_copies_then_averages():
    algo, batches = _setup()
    algo.sma_start = 3
    states = []
    for _ in range(5):
        algo.update(batches)
        states.append(algo.network.state_dict()["1.weight"].clone())
    # updates 1-2 copy the network; from update 3 the mean of the states since update 2's copy
    expected = (((states[1] * 1 + states[2]) / 2) * 2 + states[3]) / 3
    expected = (expected * 3 + states[4]) / 4
    assert torch.allclose(algo.network_sma.state_dict()["1.weight"], expected, atol=1e-7)
    x = batches[0][0]
    assert torch.equal(algo.predict(x), algo.network_sma(x))


def test_lars_step_from_its_definition():
    w = torch.nn.Parameter(torch.tensor([[3.0, 4.0]]))
    b = torch.nn.Parameter(torch.tensor([1.0]))
    opt = LARS([w, b], lr=0.5, weight_decay=0.1)
    w.grad, b.grad = torch.tensor([[0.6, 0.8]]), torch.tensor([2.0])
    opt.step()
    update = torch.tensor([[0.6, 0.8]]) + 0.1 * torch.tensor([[3.0, 4.0]])  # (0.9, 1.2): norm 1.5; ||w|| 5
    assert torch.allclose(w.detach(), torch.tensor([[3.0, 4.0]]) - 0.5 * update * (0.001 * 5 / 1.5))
    assert b.item() == pytest.approx(1.0 - 0.5 * 2.0)  # 1-D: no scaling, no decay
    w.grad, b.grad = torch.zeros(1, 2), torch.zeros(1)
    opt.step()  # momentum 0.9 carries the last step
    assert b.item() == pytest.approx(0.0 - 0.5 * 0.9 * 2.0)


def test_plateau_follows_torchs_rule_and_stops_at_the_third_reduction():
    algo, batches = _setup(linear_steps=0)
    algo.update(batches)  # the probe is over
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(
        torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3), "min", patience=1)
    losses = [1.0, 0.9, 0.95, 0.96, 0.91, 0.92, 0.93, 0.94]
    ours, theirs = [], []
    for value in losses:
        algo.after_validation(value)
        reference.step(value)
        ours.append(algo.optimizer.param_groups[0]["lr"])
        theirs.append(reference.get_last_lr()[0])
    assert ours[:7] == pytest.approx(theirs[:7])  # reductions after 0.96 and 0.92, as torch's scheduler
    assert theirs[3] == pytest.approx(1e-4) and theirs[5] == pytest.approx(1e-5)
    assert ours[7] == 0.0 and theirs[7] == pytest.approx(1e-6)  # the third reduction: DomainBed's 0


def test_draws_equal_domainbeds():
    assert_draws("ermplusplus", "RotatedMNIST", 0, 0, {"linear_lr": 5e-05, "linear_steps": 500, "lars": False})
    assert_draws("ermplusplus", "RotatedMNIST", 1, 0, {"linear_lr": 2.7696523567489467e-05, "linear_steps": 500,
                                                        "lr": 0.00011906162909279594, "batch_size": 372})
    assert_draws("ermplusplus", "PACS", 2, 1, {"linear_lr": 2.021394782611332e-05, "lr": 0.0002692684204277505,
                                               "weight_decay": 3.539788355410888e-06, "batch_size": 18})


@pytest.mark.slow
def test_on_the_domainbed2024_backbone_with_a_weights_file(tmp_path):
    """DomainBed's `resnet50_augmix`: timm's resnet50.ram_in1k, weights from a file the user provides (here a
    random state dict), BatchNorm trained, so the averaged network's statistics follow its own passes."""
    timm = pytest.importorskip("timm")
    from dagrad.networks.registry import build_featurizer

    weights = tmp_path / "resnet50.ram_in1k.pth"
    torch.manual_seed(0)
    state = timm.create_model("resnet50.ram_in1k", pretrained=False, num_classes=0).state_dict()
    torch.save(state, weights)
    net = build_featurizer("timm:resnet50.ram_in1k", {"pretrained": str(weights), "freeze_bn": False, "dropout": 0.0},
                           (3, 64, 64))
    assert torch.equal(net.net.conv1.weight, state["conv1.weight"]) and net.n_outputs == 2048
    hp = resolve_hparams("ermplusplus", {"linear_steps": 0}, 0, small_images=False)
    algo = build("ermplusplus", hp, net, 5, 2)
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(2, 3, 64, 64, generator=g), torch.tensor([0, 4])) for _ in range(2)]
    before = algo.network_sma.state_dict()["0.net.bn1.running_mean"].clone()
    algo.update(batches)
    algo.update(batches)  # the probe is over after one update: the backbone moves
    assert not torch.equal(algo.network_sma.state_dict()["0.net.conv1.weight"], state["conv1.weight"])
    assert not torch.equal(algo.network_sma.state_dict()["0.net.bn1.running_mean"], before)
    assert algo.predict(batches[0][0]).shape == (2, 5)
