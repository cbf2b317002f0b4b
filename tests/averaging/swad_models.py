"""Small modules and drivers shared by the SWAD tests: every parameter set to one value per iterate."""

from __future__ import annotations

import torch
from torch import nn

from dagrad.averaging import SWAD


class Tiny(nn.Module):
    """A linear layer, a BatchNorm (float + integer buffers) and an optimizer attribute, like an Algorithm.
    `set(v)` writes v into every parameter and into the BatchNorm running mean."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)
        self.bn = nn.BatchNorm1d(1)
        self.optimizer = torch.optim.Adam(self.parameters())

    def set(self, value: float) -> None:
        with torch.no_grad():
            for p in self.parameters():
                p.fill_(value)
            self.bn.running_mean.fill_(value)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.linear(x))


def step(swad: SWAD, model: Tiny, value: float) -> None:
    model.set(value)
    swad.after_step(model)


def epoch(swad: SWAD, model: Tiny, values, loss: float, kind: str = "train") -> None:
    for v in values:
        step(swad, model, v)
    swad.after_epoch(model, loss, kind)


def weight(module: nn.Module) -> float:
    return module.linear.weight[0, 0].item()
