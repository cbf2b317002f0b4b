"""Featurizers: widths, frozen BatchNorm, timm by name, pretrained weights from a file or a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dagrad.utils.errors import ConfigError
from dagrad.networks import NETWORKS, network_entry
from dagrad.networks import build_featurizer as build


def build_featurizer(spec, input_shape):
    """The featurizer with its options checked and defaults filled, as an experiment resolves them."""
    name, given = spec
    entry, _ = network_entry(name)
    return build(name, entry.resolve(given, "network.options"), input_shape)


def net(name, **options):
    return name, options


def test_digits_cnn_shapes_and_no_running_statistics():
    f = build_featurizer(net("digits_cnn", width=16), (1, 12, 12))
    assert build_featurizer(net("digits_cnn"), (1, 12, 12)).n_outputs == 2 * NETWORKS.get("digits_cnn").option_table()[
        "width"].default
    assert f(torch.zeros(4, 1, 12, 12)).shape == (4, 32) and f.n_outputs == 32
    assert not list(f.buffers())  # GroupNorm: nothing for GradSamp's buffer policy to act on


@pytest.mark.parametrize("freeze", [True, False])
def test_resnet_batchnorm_frozen_or_not(freeze):
    f = build_featurizer(net("resnet18", freeze_bn=freeze), (3, 32, 32))
    f.train()
    bns = [m for m in f.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(m.training is not freeze for m in bns)
    assert all(p.requires_grad for m in bns for p in m.parameters())  # affine parameters still train
    before = bns[0].running_mean.clone()
    f(torch.randn(4, 3, 32, 32))
    assert torch.equal(before, bns[0].running_mean) is freeze
    assert f.n_outputs == 512


def test_any_timm_model_by_name():
    f = build_featurizer(net("timm:resnet10t"), (3, 32, 32))
    assert f(torch.zeros(2, 3, 32, 32)).shape == (2, f.n_outputs)
    with pytest.raises(ConfigError, match="timm has no model 'no_such_net'"):
        network_entry("timm:no_such_net")
    with pytest.raises(ConfigError, match="choose one of: digits_cnn, mnist_cnn, resnet18, resnet50, timm:<model>"):
        network_entry("vgg")


def test_pretrained_from_a_local_file(tmp_path):
    import torchvision

    source = torchvision.models.resnet18(weights=None)
    torch.save(source.state_dict(), tmp_path / "r18.pth")
    f = build_featurizer(net("resnet18", pretrained=str(tmp_path / "r18.pth")), (3, 32, 32))
    assert torch.equal(f.net.conv1.weight, source.conv1.weight)


def test_pretrained_problems_are_clear(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="no weights file at"):
        build_featurizer(net("resnet18", pretrained=str(tmp_path / "missing.pth")), (3, 32, 32))
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(ConfigError, match="not a readable torch state dict"):
        build_featurizer(net("resnet18", pretrained=str(tmp_path / "junk.pth")), (3, 32, 32))
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(ConfigError, match="do not fit resnet18"):
        build_featurizer(net("resnet18", pretrained=str(tmp_path / "wrong.pth")), (3, 32, 32))

    import torchvision

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.__class__, "get_state_dict", offline)
    with pytest.raises(ConfigError, match="ImageNet weights for resnet18 are unavailable here"):
        build_featurizer(net("resnet18", pretrained="imagenet"), (3, 32, 32))
    with pytest.raises(ConfigError, match="network.options.pretrained: not an option of digits_cnn; allowed: width"):
        build_featurizer(net("digits_cnn", pretrained="imagenet"), (1, 12, 12))


@pytest.mark.parametrize("channels", [1, 2, 5])
def test_non_rgb_input_reuses_the_pretrained_rgb_filters_cyclically(tmp_path, channels):
    """DomainBed's ResNet: conv1.weight[:, i] = pretrained conv1.weight[:, i % 3] for every input channel i."""
    import torchvision

    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "rgb.pt")
    f = build_featurizer(net("resnet18", pretrained=str(tmp_path / "rgb.pt")), (channels, 32, 32))
    conv, rgb = f.net.conv1, reference.conv1.weight
    assert conv.weight.shape == (64, channels, 7, 7) and conv.stride == (2, 2) and conv.padding == (3, 3)
    for i in range(channels):
        assert torch.equal(conv.weight[:, i], rgb[:, i % 3])
    assert torch.equal(f.net.layer1[0].conv1.weight, reference.layer1[0].conv1.weight)  # the rest is loaded as is
    assert f(torch.zeros(2, channels, 32, 32)).shape == (2, 512)


def test_backbone_dropout_is_in_the_search_space():
    option = NETWORKS.get("resnet50").option_table()["dropout"]
    assert option.default == 0.0 and NETWORKS.get("resnet50").info["search_names"] == {"dropout": "resnet_dropout"}
    assert {option.search(np.random.RandomState(s)) for s in range(60)} == {0.0, 0.1, 0.5}


def test_mnist_cnn_is_domainbeds_mnist_network():
    """DomainBed's MNIST_CNN: 3x3 convolutions 64, 128 (stride 2), 128, 128, each ReLU then GroupNorm(8),
    average-pooled to 128 features; 370,560 parameters for one input channel, 371,136 for ColoredMNIST's two."""
    f = build_featurizer(net("mnist_cnn"), (1, 28, 28))
    assert f.n_outputs == 128 and f(torch.zeros(3, 1, 28, 28)).shape == (3, 128)
    assert sum(p.numel() for p in f.parameters()) == 370_560
    assert sum(p.numel() for p in build_featurizer(net("mnist_cnn"), (2, 28, 28)).parameters()) == 371_136
    convs = [m for m in f.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.stride) for c in convs] == [(64, (1, 1)), (128, (2, 2)), (128, (1, 1)), (128, (1, 1))]
    assert all(m.num_groups == 8 for m in f.modules() if isinstance(m, torch.nn.GroupNorm))
