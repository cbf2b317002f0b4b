"""What of a model's state travels between the server and the clients: each tensor once.

A module registered under two names appears twice in its owner's state dict: DomainBed's ERM holds its
featurizer as `featurizer` and again inside `network` (as network.0), so ERM's state lists every
featurizer weight twice. Sending both copies would double a round's traffic and gain nothing. The sender
leaves such aliases out (`once`); the receiver fills them in again from the tensor they alias
(`with_aliases`) before load_state_dict, which would otherwise load the stale alias last."""

from __future__ import annotations

from typing import Mapping

import torch


def aliases(state: Mapping[str, torch.Tensor]) -> dict[str, str]:
    """{alias: the first name holding the same tensor} in a module's own state dict (not a copy of it)."""
    first: dict[tuple, str] = {}
    out: dict[str, str] = {}
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor) or tensor.numel() == 0:
            continue
        ident = (tensor.device, tensor.data_ptr(), tensor.dtype, tuple(tensor.shape), tuple(tensor.stride()))
        if ident in first:
            out[name] = first[ident]
        else:
            first[ident] = name
    return out


def once(state: Mapping[str, torch.Tensor], alias: Mapping[str, str]) -> dict[str, torch.Tensor]:
    """`state` without the names in `alias`: each tensor once."""
    return {k: v for k, v in state.items() if k not in alias}


def with_aliases(state: Mapping[str, torch.Tensor], alias: Mapping[str, str]) -> dict[str, torch.Tensor]:
    """`state` with every alias absent from it set to the tensor it aliases."""
    out = dict(state)
    for name, source in alias.items():
        if name not in out and source in out:
            out[name] = out[source]
    return out
