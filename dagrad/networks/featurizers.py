"""Featurizers map images to feature vectors and say how wide those are (`n_outputs`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dagrad.errors import ConfigError
from dagrad.networks.weights import load_pretrained

RESNETS = ("resnet18", "resnet50")


def check_network_name(name: str) -> None:
    if name == "digits_cnn" or name in RESNETS:
        return
    if name.startswith("timm:") and len(name) > 5:
        import timm

        model = name[5:]
        if not timm.is_model(model):
            raise ConfigError(f"network.name: timm has no model {model!r} (see timm.list_models())")
        return
    raise ConfigError(
        f"network.name: unknown network {name!r}; choose one of: digits_cnn, resnet18, resnet50, timm:<model>"
    )


def build_featurizer(cfg: Any, input_shape: tuple[int, ...]) -> nn.Module:
    """The featurizer the network config names, with `n_outputs` set."""
    check_network_name(cfg.name)
    if cfg.name == "digits_cnn":
        if cfg.pretrained:
            raise ConfigError("network.pretrained: digits_cnn has no pretrained weights; set it to null")
        return DigitsCNN(input_shape[0], cfg.width)
    if cfg.name in RESNETS:
        return ResNetFeaturizer(cfg.name, input_shape[0], cfg.pretrained, cfg.freeze_bn, cfg.dropout)
    return TimmFeaturizer(cfg.name[5:], cfg.pretrained, cfg.freeze_bn, cfg.dropout)


class DigitsCNN(nn.Module):
    """DomainBed's MNIST network at a configurable width: four 3x3 convolutions with ReLU and GroupNorm
    (no BatchNorm, so no running statistics), then global average pooling."""

    def __init__(self, in_channels: int, width: int = 32):
        super().__init__()
        w, w2 = width, 2 * width
        groups = 8 if width % 8 == 0 else 1
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1), nn.ReLU(), nn.GroupNorm(groups, w),
            nn.Conv2d(w, w2, 3, stride=2, padding=1), nn.ReLU(), nn.GroupNorm(groups, w2),
            nn.Conv2d(w2, w2, 3, padding=1), nn.ReLU(), nn.GroupNorm(groups, w2),
            nn.Conv2d(w2, w2, 3, padding=1), nn.ReLU(), nn.GroupNorm(groups, w2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.n_outputs = w2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class _FrozenBatchNormMixin:
    """BatchNorm layers stay in eval mode (running statistics frozen, affine parameters trainable),
    as in DomainBed's published 2020 runs and in SWAD."""

    freeze_bn: bool

    def train(self, mode: bool = True):  # type: ignore[override]
        super().train(mode)  # type: ignore[misc]
        if self.freeze_bn:
            for module in self.modules():  # type: ignore[attr-defined]
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self


class ResNetFeaturizer(_FrozenBatchNormMixin, nn.Module):
    """torchvision ResNet-18/50 without its fc layer, optionally with dropout on the features."""

    def __init__(self, arch: str, in_channels: int, pretrained: str | None, freeze_bn: bool, dropout: float):
        super().__init__()
        import torchvision

        net = getattr(torchvision.models, arch)(weights=None)
        if pretrained:
            load_pretrained(net, pretrained, arch, drop_prefixes=("fc.",))
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.n_outputs = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net
        self.dropout = nn.Dropout(dropout)
        self.freeze_bn = freeze_bn
        self.train()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.net(x))


class TimmFeaturizer(_FrozenBatchNormMixin, nn.Module):
    """Any timm model with its classifier removed (num_classes=0), e.g. `timm:vit_small_patch16_224`."""

    def __init__(self, model: str, pretrained: str | None, freeze_bn: bool, dropout: float):
        super().__init__()
        import timm

        self.net = timm.create_model(model, pretrained=False, num_classes=0)
        if pretrained:
            load_pretrained(self.net, pretrained, f"timm:{model}")
        self.n_outputs = self.net.num_features
        self.dropout = nn.Dropout(dropout)
        self.freeze_bn = freeze_bn
        self.train()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.net(x))
