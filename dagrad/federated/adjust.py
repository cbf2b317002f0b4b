"""FedDG-GA in a federated run's rounds (the arithmetic is dagrad.federated.fedga), and the client-local
state of objectives such as FedSR's.

As the reference's training scripts (MediaBrain-SJTU/FedDG-GA, train_*_GA.py) do each round: every client
that trained evaluates its own local model on its validation data (its training domains' `out` splits)
after local training; the server aggregates with the current generalisation-adjustment weights, every
client evaluates the aggregated model on the same data, and the gap (global minus local) updates the
weights used to aggregate the next round. The reference's metric on a split set is the pooled one (all
examples together), which `validation_metric` computes from per-split figures on both sides. Its code
measures the gap in accuracy by default (`--fair acc`, federated.ga_metric's default); the paper writes it
with the loss (ga_metric: loss).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import torch

from dagrad.config.schema import FederatedConfig
from dagrad.federated.fedga import GeneralizationAdjustment
from dagrad.utils.errors import ConfigError

#: the metric name under which the server gives each reply its FedDG-GA weight for Flower's FedAvg
WEIGHT_KEY = "fedga-weight"
#: federated.ga_metric -> the key of a split's figures it reads
SPLIT_KEYS = {"loss": "loss", "accuracy": "acc"}


def validation_metric(splits: Mapping[str, Mapping[str, float]], names: list[str], metric: str) -> float:
    """`metric` over the splits `names` (a client's validation splits, its domains' `out`) pooled by example
    counts: what the reference's evaluation of a client's validation loader gives."""
    key = SPLIT_KEYS[metric]
    names = [n for n in names if n in splits and splits[n]["n"] > 0]
    total = sum(float(splits[n]["n"]) for n in names)
    if total <= 0:
        raise ConfigError("federated.strategy fedga: a client holds no validation examples (its domains' out "
                          "splits are empty); raise data.holdout_fraction or use fewer clients")
    return sum(float(splits[n][key]) * float(splits[n]["n"]) for n in names) / total


class FedGA:
    """The server's FedDG-GA: the weights across rounds, their coefficients for a round, their update."""

    def __init__(self, fed: FederatedConfig, rounds: int):
        self.metric = fed.ga_metric
        self.ga = GeneralizationAdjustment(range(fed.clients), rounds, step_size=fed.ga_step_size,
                                           metric=fed.ga_metric)

    def coefficients(self, clients: list[int]) -> dict[int, float]:
        """This round's aggregation weights of the clients that trained."""
        return {int(c): float(w) for c, w in self.ga.coefficients(clients).items()}

    def update(self, round_: int, local: Mapping[int, float], global_: Mapping[int, float]) -> dict[int, float]:
        """The weights after round `round_` from the participants' local and global validation metrics."""
        return {int(c): float(w) for c, w in self.ga.update(round_, dict(local), dict(global_)).items()}

    def weights(self) -> dict[int, float]:
        """Every client's current weight."""
        return {int(c): float(w) for c, w in self.ga.weights.items()}

    def state_dict(self) -> dict[str, Any]:
        return self.ga.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.ga.load_state_dict(state)


def local_keys(algorithm: torch.nn.Module) -> list[str]:
    """The state-dict keys a client keeps to itself (its algorithm's LOCAL_STATE, e.g. FedSR's reference
    marginal): never averaged, never overwritten by the global model."""
    names = tuple(getattr(algorithm, "LOCAL_STATE", ()))
    return [k for k in algorithm.state_dict() if k.split(".")[0] in names]


def without(state: Mapping[str, torch.Tensor], keys: list[str]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k not in keys}


def kept(state: Mapping[str, torch.Tensor], keys: list[str]) -> Optional[dict[str, torch.Tensor]]:
    return {k: state[k].detach().cpu().clone() for k in keys} if keys else None


__all__ = ["FedGA", "WEIGHT_KEY", "kept", "local_keys", "validation_metric", "without"]
