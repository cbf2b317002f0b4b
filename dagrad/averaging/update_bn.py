"""Recompute BatchNorm running statistics for averaged weights (SWAD with BatchNorm that is not frozen).

Averaging weights does not average the statistics that go with them, so khanrc/swad feeds 500 training
batches through the averaged model when `freeze_bn` is false. This does the same: only BatchNorm layers
that would update their statistics in train mode are touched (a featurizer with frozen BatchNorm keeps
them in eval mode even after `.train()`); their statistics restart from zero mean and unit variance and
become the cumulative average over the batches fed (momentum None, as torch's `swa_utils.update_bn`).
Every other module stays in eval mode (no dropout), nothing needs gradients, and every module's mode and
every layer's momentum are restored afterwards.
"""

from __future__ import annotations

import itertools
from typing import Iterable, Sequence

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


def updating_batchnorms(module: nn.Module) -> list[_BatchNorm]:
    """The BatchNorm layers of `module` that update running statistics when it is put in train mode."""
    modes = {m: m.training for m in module.modules()}
    try:
        module.train()
        return [m for m in module.modules()
                if isinstance(m, _BatchNorm) and m.training and m.track_running_stats and m.running_mean is not None]
    finally:
        for m, mode in modes.items():
            m.training = mode


def _inputs(batch: Sequence) -> Tensor:
    """One step's inputs: the per-environment tensors (or (x, y) pairs) concatenated."""
    return torch.cat([b[0] if isinstance(b, (tuple, list)) else b for b in batch])


def update_bn(module: nn.Module, batches: Iterable[Sequence[Tensor]], steps: int) -> int:
    """Feed up to `steps` batches (lists of per-environment inputs) through `module` to recompute the
    running statistics of its updating BatchNorm layers; returns the number of steps run (0 if it has none,
    or no batch came, in which case nothing is changed)."""
    layers = updating_batchnorms(module) if steps > 0 else []
    if not layers:
        return 0
    stream = iter(itertools.islice(batches, steps))
    first = next(stream, None)
    if first is None:
        return 0
    modes = {m: m.training for m in module.modules()}
    momenta = {bn: bn.momentum for bn in layers}
    device = next(itertools.chain(module.parameters(), module.buffers())).device
    forward = module.predict if callable(getattr(module, "predict", None)) else module
    done = 0
    try:
        module.eval()
        for bn in layers:
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
        with torch.no_grad():
            for batch in itertools.chain([first], stream):
                forward(_inputs(batch).to(device))
                done += 1
    finally:
        for bn, momentum in momenta.items():
            bn.momentum = momentum
        for m, mode in modes.items():
            m.training = mode
    return done
