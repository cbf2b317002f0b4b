"""An update counter that checkpoints carry: a host integer (choosing a branch never waits for the GPU)
mirrored in a long buffer, restored from the buffer when a state dict is loaded."""

from __future__ import annotations

import torch
from torch import nn


def add_update_count(module: nn.Module) -> None:
    """Give `module` an `update_count` buffer and a host `updates_done` that follows it across loads."""
    module.register_buffer("update_count", torch.zeros((), dtype=torch.long))
    module.updates_done = 0
    module.register_load_state_dict_post_hook(_count_from_buffer)


def count_update(module: nn.Module) -> None:
    """One more update done: the host count and its buffer move together."""
    module.updates_done += 1
    module.update_count.fill_(module.updates_done)


def _count_from_buffer(module: nn.Module, incompatible_keys: object) -> None:
    module.updates_done = int(module.update_count)


COUNTER_RULE = ("kept: counts the updates actually run, so a sampled epoch adds none; "
                "saved in checkpoints, so resume continues it")
