"""FedDG-GA's server-side generalisation adjustment of the clients' aggregation weights.

Zhang, Li, Lin, Lyu, Liu, Zhao, "Federated Domain Generalization with Generalization Adjustment", CVPR 2023
(reference code: MediaBrain-SJTU/FedDG-GA, `refine_weight_dict_by_GA` and its use in train_*_GA.py).
After each round a client's generalisation gap is the global model's metric on its validation data minus
its own local model's (loss: a positive gap means the global model generalises worse to this client, so
its weight grows; accuracy: the sign flips). With gaps g_k and step d_r:

    w_k <- w_k + scale * d_r * g_k / max_j |g_j|,  then clipped to [0, 1] and divided by their sum.

Weights start uniform; `scale` is the reference's fixed 1/3 (its three PACS clients). The step decays
linearly: the reference runs rounds i = 0..comm with d_i = d - (i - 1) * d / comm (so round 0 uses a step
a little above d and the last d / comm); here `rounds` is the run's number of rounds (comm = rounds - 1).

Two cases the reference leaves undefined are made explicit: all gaps 0 (the reference divides by 0)
leaves the weights as they are, and so does an update that would clip every weight to 0. With partial
participation, clients that did not take part have gap 0 (their weight moves only by the renormalisation)
and the round's aggregation coefficients are the participants' weights renormalised, as FedDG-Benchmark
(inouye-lab/FedDG_Benchmark) applies GA to sampled clients.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Hashable, Iterable, Mapping, Sequence

from dagrad.utils.errors import ConfigError

#: the reference's fixed factor on the step (1/3: one over its three clients)
REFERENCE_SCALE = 1.0 / 3.0
METRICS = {"loss": 1.0, "accuracy": -1.0}


def _number(value: object, what: str, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < low:
        raise ConfigError(f"federated.fedga.{what}: {value!r} is not allowed; use a finite number >= {low:g}")
    return float(value)


def ga_step_size(round_index: int, rounds: int, step_size: float = 0.2) -> float:
    """The step d_r after zero-based round `round_index` of `rounds`: d - (r - 1) * d / (rounds - 1), the
    reference's linear decay with comm = rounds - 1 (one round: d)."""
    if rounds <= 1:
        return float(step_size)
    return step_size - (round_index - 1) * (step_size / (rounds - 1))


def adjust_weights(weights: Sequence[float], gaps: Sequence[float], step: float) -> list[float]:
    """One adjustment: w_k + step * g_k / max|g|, clipped to [0, 1], normalised to sum 1 (`step` already
    includes the scale). Gaps are signed so that a larger gap earns more weight."""
    if len(weights) != len(gaps) or not weights:
        raise ValueError(f"adjust_weights: {len(weights)} weights and {len(gaps)} gaps; need the same, at least one")
    for k, g in enumerate(gaps):
        if not math.isfinite(g):
            raise ValueError(f"adjust_weights: client {k}'s gap is {g!r}; gaps must be finite numbers")
    largest = max(abs(g) for g in gaps)
    if largest == 0:
        return _normalised(list(weights)) or list(weights)
    moved = [min(max(w + g / largest * step, 0.0), 1.0) for w, g in zip(weights, gaps)]
    return _normalised(moved) or _normalised(list(weights)) or list(weights)


def _normalised(values: list[float]) -> list[float]:
    total = math.fsum(values)
    return [v / total for v in values] if total > 0 else []


class GeneralizationAdjustment:
    """FedDG-GA's weights across rounds: `coefficients(participants)` for a round's aggregation, then
    `update(round_index, local, global_)` with each participant's metric of its local and of the global model."""

    def __init__(self, clients: Iterable[Hashable], rounds: int, step_size: float = 0.2, metric: str = "loss",
                 scale: float = REFERENCE_SCALE):
        self.clients = list(clients)
        if not self.clients or len(set(self.clients)) != len(self.clients):
            raise ConfigError(f"federated.fedga: clients {self.clients!r} must be at least one, each named once")
        if isinstance(rounds, bool) or not isinstance(rounds, numbers.Integral) or rounds < 1:
            raise ConfigError(f"federated.rounds: {rounds!r} is not allowed; use an integer >= 1")
        if metric not in METRICS:
            raise ConfigError(f"federated.fedga.metric: {metric!r} is not allowed; use one of: {', '.join(METRICS)}")
        self.rounds, self.metric = int(rounds), metric
        self.step_size, self.scale = _number(step_size, "step_size"), _number(scale, "scale")
        self.weights: dict[Hashable, float] = {c: 1.0 / len(self.clients) for c in self.clients}

    def coefficients(self, participants: Iterable[Hashable]) -> dict[Hashable, float]:
        """The aggregation weights of this round's participants (their GA weights, renormalised)."""
        chosen = list(participants)
        self._known(chosen)
        shares = _normalised([self.weights[c] for c in chosen])
        if not shares:
            shares = [1.0 / len(chosen)] * len(chosen)
        return dict(zip(chosen, shares))

    def update(self, round_index: int, local: Mapping[Hashable, float],
               global_: Mapping[Hashable, float]) -> dict[Hashable, float]:
        """After zero-based round `round_index`: `local[c]` is client c's metric for its own trained model,
        `global_[c]` the aggregated model's, both on c's validation data. Returns the new weights."""
        if set(local) != set(global_):
            raise ValueError(f"fedga: local metrics for {sorted(map(str, local))} "
                             f"but global ones for {sorted(map(str, global_))}")
        self._known(list(local))
        if not 0 <= round_index < self.rounds:
            raise ValueError(f"fedga: round {round_index} is outside 0..{self.rounds - 1}")
        sign = METRICS[self.metric]
        gaps = [sign * (global_[c] - local[c]) if c in local else 0.0 for c in self.clients]
        step = self.scale * ga_step_size(round_index, self.rounds, self.step_size)
        new = adjust_weights([self.weights[c] for c in self.clients], gaps, step)
        self.weights = dict(zip(self.clients, new))
        return dict(self.weights)

    def _known(self, names: Sequence[Hashable]) -> None:
        unknown = [c for c in names if c not in self.weights]
        if unknown or not names:
            raise ValueError(f"fedga: clients {unknown!r} are not among {self.clients!r}" if unknown
                             else "fedga: no clients")

    def state_dict(self) -> dict[str, Any]:
        """Plain values for a checkpoint (the weights in client order)."""
        return {"clients": list(self.clients), "weights": [self.weights[c] for c in self.clients]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if list(state.get("clients", [])) != self.clients or len(state.get("weights", [])) != len(self.clients):
            raise ValueError("fedga: the saved state is for other clients than this run's")
        self.weights = {c: float(w) for c, w in zip(self.clients, state["weights"])}


__all__ = ["GeneralizationAdjustment", "REFERENCE_SCALE", "adjust_weights", "ga_step_size"]
