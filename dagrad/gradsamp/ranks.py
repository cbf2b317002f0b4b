"""A GradSamp draw on several processes (dagrad.run.distributed): every rank draws the same theta_t from
generators seeded by (run seed, epoch), so the ranks should take the same decision and hold the same model.
After each sampled epoch they compare both through the job's collectives; should they differ (device
generators that disagree), rank 0's draw, decision and optimizer state are broadcast and the record says so
(`sampler_stats["ranks_agreed"]`)."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from dagrad.run.distributed import Distributed, state_tensors
from dagrad.run.epochs import FALLBACKS, EpochKind, EpochOutcome


def settle_draw(dist: Distributed, outcome: EpochOutcome, algorithm: nn.Module) -> EpochOutcome:
    """After a sampled epoch: every rank must have taken rank 0's decision and hold rank 0's model. If not,
    rank 0's parameters, buffers, optimizer state and decision are put on every rank (see the module
    docstring). One process: `outcome` as it is."""
    if not dist.active:
        return outcome
    decision = torch.tensor([list(EpochKind).index(EpochKind(outcome.kind)),
                             (None, *FALLBACKS).index(outcome.fallback)], dtype=torch.float64)
    agreed = dist.same_everywhere(torch.cat([decision, dist.checksum(algorithm).cpu()]))
    outcome.sampler_stats = {**(outcome.sampler_stats or {}), "ranks_agreed": agreed}
    if agreed:
        return outcome
    warnings.warn("the ranks' GradSamp draws differed (device generators disagree); rank 0's draw, decision "
                  "and optimizer state are used on every rank")
    dist.broadcast_tensors(state_tensors(algorithm))
    optimizers: dict[str, Any] = algorithm.optimizers()
    states = dist.broadcast_object({name: opt.state_dict() for name, opt in optimizers.items()})
    for name, opt in optimizers.items():
        opt.load_state_dict(states[name])
    kind, fallback = dist.broadcast_object((str(outcome.kind), outcome.fallback))
    outcome.kind, outcome.fallback = EpochKind(kind), fallback
    return outcome
