"""Server-side averaging of client models (FedAvg) and FedProx's client-side proximal term.

FedAvg: McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized Data",
AISTATS 2017: the global model is the average of the clients' models weighted by their example counts.
FedProx: Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020: each client minimises
its loss plus mu/2 * ||w - w_global||^2, the global model of the round held fixed.

Floating tensors are averaged (accumulated in float64, returned in their own dtype), BatchNorm's running
statistics included. Integer and boolean tensors are not averaged: they are counters (BatchNorm's
`num_batches_tracked`) or flags, and the result takes their maximum over the clients. Every client starts
a round from the same global counter and adds its own steps, so summing would count the shared history
once per client, and taking the first client's would depend on the order the clients report in; the
maximum is order-free and equals the counter of the client that ran the most steps (one client: its own).
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable, Mapping, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from dagrad.utils.errors import ConfigError

def normalized_weights(weights: Sequence[float]) -> list[float]:
    """Weights (example counts, or any non-negative numbers) scaled to sum to 1."""
    values = list(weights)
    if not values:
        raise ConfigError("federated: no clients to aggregate; need at least one client's model")
    for k, w in enumerate(values):
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w) or w < 0:
            raise ConfigError(
                f"federated: client {k}'s aggregation weight {w!r} is not allowed; use a finite number >= 0")
    total = math.fsum(float(w) for w in values)
    if total <= 0:
        raise ConfigError(f"federated: the aggregation weights {values} sum to 0; at least one client needs examples")
    return [float(w) / total for w in values]


def _average(tensors: Sequence[Tensor], shares: Sequence[float], name: str) -> Tensor:
    first = tensors[0]
    for k, t in enumerate(tensors[1:], start=1):
        if t.shape != first.shape or t.dtype != first.dtype:
            raise ValueError(f"aggregate: client {k}'s {name} is {tuple(t.shape)} {t.dtype}, "
                             f"client 0's is {tuple(first.shape)} {first.dtype}")
    if not (first.is_floating_point() or first.is_complex()):
        return torch.stack([t.detach() for t in tensors]).amax(0) if first.numel() else first.detach().clone()
    wide = torch.complex128 if first.is_complex() else torch.float64
    total = torch.zeros(first.shape, dtype=wide, device=first.device)
    for t, share in zip(tensors, shares):
        total += t.detach().to(wide) * share
    return total.to(first.dtype)


def weighted_average(states: Sequence[Mapping[str, Tensor]], weights: Sequence[float]) -> dict[str, Tensor]:
    """FedAvg of state dicts: each floating tensor is sum_k w_k * state_k / sum_k w_k; integer and boolean
    tensors take their maximum (see the module docstring). All states need the same keys, shapes, dtypes."""
    shares = normalized_weights(weights)
    if len(states) != len(shares):
        raise ValueError(f"aggregate: {len(states)} client states but {len(shares)} weights")
    keys = list(states[0])
    for k, state in enumerate(states[1:], start=1):
        if list(state) != keys:
            missing, extra = set(keys) - set(state), set(state) - set(keys)
            raise ValueError(f"aggregate: client {k}'s state has other keys than client 0's "
                             f"(missing {sorted(missing)}, extra {sorted(extra)})")
    return {key: _average([state[key] for state in states], shares, key) for key in keys}


def weighted_average_arrays(arrays: Sequence[Sequence[np.ndarray]], weights: Sequence[float]) -> list[np.ndarray]:
    """The same rule over lists of numpy arrays (a federated framework's parameter lists), in order."""
    shares = normalized_weights(weights)
    if len(arrays) != len(shares):
        raise ValueError(f"aggregate: {len(arrays)} client parameter lists but {len(shares)} weights")
    if any(len(a) != len(arrays[0]) for a in arrays):
        counts = sorted({len(a) for a in arrays})
        raise ValueError(f"aggregate: clients sent {counts} arrays; all must send the same number")
    return [
        _average([torch.from_numpy(np.asarray(a[i])) for a in arrays], shares, f"array {i}").numpy()
        for i in range(len(arrays[0]))
    ]


def proximal_term(params: Iterable[Tensor], global_params: Iterable[Tensor], mu: float) -> Tensor:
    """FedProx's mu/2 * sum ||w - w_global||^2 over matching tensors; the global ones are constants (their
    gradient is not taken), so the term's gradient is mu * (w - w_global)."""
    if isinstance(mu, bool) or not isinstance(mu, numbers.Real) or not math.isfinite(mu) or mu < 0:
        raise ConfigError(f"federated.fedprox.mu: {mu!r} is not allowed; use a finite number >= 0")
    local, fixed = list(params), list(global_params)
    if len(local) != len(fixed):
        raise ValueError(f"proximal_term: {len(local)} local tensors but {len(fixed)} global ones")
    if not local:
        raise ValueError("proximal_term: no tensors")
    squares = []
    for i, (w, g) in enumerate(zip(local, fixed)):
        if w.shape != g.shape:
            raise ValueError(f"proximal_term: tensor {i} is {tuple(w.shape)} locally, {tuple(g.shape)} globally")
        squares.append((w - g.detach().to(device=w.device, dtype=w.dtype)).pow(2).sum())
    return mu / 2 * torch.stack(squares).sum()


def with_proximal_term(loss: Tensor, model: Union[torch.nn.Module, Iterable[Tensor]],
                       global_params: Iterable[Tensor], mu: float) -> Tensor:
    """`loss` plus FedProx's term for `model`'s parameters (all of `model.parameters()`, in that order; a
    frozen one adds nothing, as it still equals its global value) or the given tensors, against the round's
    global parameters in the same order. mu = 0 returns `loss` itself."""
    params = list(model.parameters()) if isinstance(model, torch.nn.Module) else list(model)
    if mu == 0 and not isinstance(mu, bool):
        return loss
    return loss + proximal_term(params, global_params, mu)


__all__ = ["normalized_weights", "proximal_term", "weighted_average", "weighted_average_arrays", "with_proximal_term"]
