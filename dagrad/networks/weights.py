"""Pretrained weights from a local file, or from the usual sources when the machine has internet."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from dagrad.utils.errors import ConfigError

#: torchvision's ImageNet weights (IMAGENET1K_V1), the ones DomainBed's 2020 results used
TORCHVISION_WEIGHTS = {"resnet18": "ResNet18_Weights", "resnet50": "ResNet50_Weights"}


def load_pretrained(net: nn.Module, pretrained: str, arch: str, drop_prefixes: tuple[str, ...] = ()) -> None:
    """Load `pretrained` ("imagenet" or a path to a state-dict file) into `net`, strictly for the backbone."""
    if pretrained == "imagenet":
        state = _imagenet_state(arch)
    else:
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise ConfigError(f"network.pretrained: no weights file at {path} (give a state-dict file or 'imagenet')")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input problem
            raise ConfigError(f"network.pretrained: {path} is not a readable torch state dict ({exc})") from None
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
    own = net.state_dict()
    state = {k: v for k, v in state.items() if k in own and not k.startswith(drop_prefixes)}
    missing = [k for k in own if k not in state and not k.startswith(drop_prefixes)]
    if missing:
        raise ConfigError(
            f"network.pretrained: the weights do not fit {arch}: {len(missing)} tensors missing, e.g. {missing[0]}"
        )
    bad = [k for k, v in state.items() if v.shape != own[k].shape]
    if bad:
        raise ConfigError(f"network.pretrained: shape mismatch for {bad[0]}: {tuple(state[bad[0]].shape)} "
                          f"in the file, {tuple(own[bad[0]].shape)} in {arch}")
    net.load_state_dict(state, strict=False)


def _imagenet_state(arch: str) -> dict:
    try:
        if arch.startswith("timm:"):
            import timm

            return timm.create_model(arch[5:], pretrained=True, num_classes=0).state_dict()
        import torchvision

        weights = getattr(torchvision.models, TORCHVISION_WEIGHTS[arch]).IMAGENET1K_V1
        return weights.get_state_dict(progress=False)
    except Exception as exc:  # noqa: BLE001 - offline, blocked hub, corrupt cache: all end the same way
        raise ConfigError(
            f"network.pretrained: ImageNet weights for {arch} are unavailable here ({type(exc).__name__}); "
            f"download them on a machine with internet and pass the file path as network.pretrained"
        ) from None
