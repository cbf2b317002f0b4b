"""Featurizers map images to feature vectors and say how wide those are (`n_outputs`)."""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from dagrad.utils.errors import ConfigError
from dagrad.networks.registry import NETWORKS
from dagrad.networks.weights import load_pretrained
from dagrad.registry import Option



def digits_cnn(input_shape: tuple[int, ...], width: int) -> nn.Module:
    return DigitsCNN(input_shape[0], width)


def mnist_cnn(input_shape: tuple[int, ...]) -> nn.Module:
    """DomainBed's MNIST_CNN (networks.py), which DomainBed picks for every 28x28 dataset."""
    return DigitsCNN(input_shape[0], 64)


def resnet(arch: str) -> Callable[..., nn.Module]:
    def build(input_shape: tuple[int, ...], pretrained: Optional[str], freeze_bn: bool, dropout: float) -> nn.Module:
        return ResNetFeaturizer(arch, input_shape[0], pretrained, freeze_bn, dropout)

    return build


def timm_model(input_shape: tuple[int, ...], model: str, pretrained: Optional[str], freeze_bn: bool,
               dropout: float) -> nn.Module:
    return TimmFeaturizer(model, pretrained, freeze_bn, dropout)


def check_timm_model(model: str) -> None:
    import timm

    if not timm.is_model(model):
        raise ConfigError(f"network.name: timm has no model {model!r} (see timm.list_models())")


def backbone_options() -> dict[str, Option]:
    """What every pretrained backbone takes (DomainBed's 2020 protocol: ImageNet, frozen BN, dropout 0).

    `dropout` is in the random search, as DomainBed's `resnet_dropout` (default 0, drawn from {0, 0.1,
    0.5} for hparams_seed > 0 unless the config sets it; see `dagrad.config.experiment.resolve`)."""
    return {
        "pretrained": Option(None, str, "null, 'imagenet' (torchvision/timm cache) or a weights file", nullable=True),
        "freeze_bn": Option(True, bool, "BatchNorm statistics frozen, affine trainable (DomainBed 2020, SWAD)"),
        "dropout": Option(0.0, float, "dropout on the features; searched over {0, 0.1, 0.5} unless set",
                          low=0.0, high=1.0, high_open=True, search=lambda r: float(r.choice([0.0, 0.1, 0.5]))),
    }


#: the name each searched backbone option is drawn under: DomainBed's, so the draws equal its own
DOMAINBED_SEARCH_NAMES = {"dropout": "resnet_dropout"}


NETWORKS.register("digits_cnn", digits_cnn, description="DomainBed's MNIST CNN (GroupNorm) at a chosen width",
                  options={"width": Option(32, int, "channels of the first layer (then 2x)", low=1)})
NETWORKS.register("mnist_cnn", mnist_cnn,
                  description="DomainBed's MNIST_CNN as published: digits_cnn at width 64 (64, 128, 128, 128 "
                              "channels, GroupNorm(8), 128 features)")
NETWORKS.register("resnet18", resnet("resnet18"), description="torchvision ResNet-18 without its fc layer",
                  options=backbone_options(), search_names=DOMAINBED_SEARCH_NAMES)
NETWORKS.register("resnet50", resnet("resnet50"), description="torchvision ResNet-50 without its fc layer",
                  options=backbone_options(), search_names=DOMAINBED_SEARCH_NAMES)
NETWORKS.register("timm", timm_model, description="any timm model, named timm:<model>, classifier removed",
                  options=backbone_options(), family=True, check_member=check_timm_model,
                  search_names=DOMAINBED_SEARCH_NAMES)


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
        self.pretrained = pretrained  # ADRMX copies a pretrained featurizer instead of re-initialising it
        if pretrained:
            load_pretrained(net, pretrained, arch, drop_prefixes=("fc.",))
        if in_channels != 3:
            net.conv1 = cyclic_input_conv(net.conv1, in_channels)
        self.n_outputs = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net
        self.dropout = nn.Dropout(dropout)
        self.freeze_bn = freeze_bn
        self.train()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.net(x))


def cyclic_input_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A copy of `conv` for `in_channels` inputs whose filter for channel i is the (pretrained) filter of
    RGB channel i mod 3, as DomainBed's ResNet adapts non-RGB inputs (a grey image then sees the R filter;
    a 4-channel input reuses R for its fourth channel). Stride, padding and bias are kept."""
    new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                    dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None)
    with torch.no_grad():
        source = conv.weight.detach()
        new.weight.copy_(source[:, [i % source.shape[1] for i in range(in_channels)]])
        if conv.bias is not None:
            new.bias.copy_(conv.bias.detach())
    return new


class TimmFeaturizer(_FrozenBatchNormMixin, nn.Module):
    """Any timm model with its classifier removed (num_classes=0), e.g. `timm:vit_small_patch16_224`."""

    def __init__(self, model: str, pretrained: str | None, freeze_bn: bool, dropout: float):
        super().__init__()
        import timm

        self.net = timm.create_model(model, pretrained=False, num_classes=0)
        self.pretrained = pretrained
        if pretrained:
            load_pretrained(self.net, pretrained, f"timm:{model}")
        self.n_outputs = self.net.num_features
        self.dropout = nn.Dropout(dropout)
        self.freeze_bn = freeze_bn
        self.train()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.net(x))
