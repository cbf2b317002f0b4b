"""FedDG-Benchmark's heterogeneity-λ partition of training environments among clients.

Bai, Bagchi, Inouye, "Benchmarking Algorithms for Federated Domain Generalization", ICLR 2024 (their
`NonIIDSplitter`, whose `iid` argument is this λ). λ = 0 gives each client data from as few environments as
possible; λ = 1 gives every client the same even mix; in between, each client's count from an environment
is the λ-weighted mix of the two.

- At least as many clients as non-empty environments: every environment is the main environment of one
  client, and each further client goes to the environment with the most examples per main client (the
  first such environment on ties). A client gets n_e·((1-λ)/s_e + λ/K) examples of its main environment e
  (s_e clients share it) and n_e·λ/K of every other one. Counts are truncated, and environment e's
  leftover (the rounded sum of the fractional parts) goes one each to the first clients.
- Fewer clients than environments: at λ = 0 each environment goes whole to the client holding the fewest
  examples so far, largest environments first (the first such client on ties; among equal sizes the later
  environment first, a stable ascending sort reversed: the reference's own order there depends on numpy's
  sort implementation); counts are the λ-mix of that and n_e/K, floored, with the remainder one each to
  the first clients.
- Examples: each environment's indices are permuted by numpy's `default_rng(seed)` (environments in
  order, one permutation each) and handed out in consecutive runs, client 0 first.
"""

from __future__ import annotations

import math
import numbers
from typing import Hashable, Mapping, Sequence, Union

import numpy as np

from dagrad.utils.errors import ConfigError

Environments = Union[Mapping[Hashable, Sequence[int]], Sequence[Sequence[int]]]


def _check(num_clients: object, lam: object) -> tuple[int, float]:
    if isinstance(num_clients, bool) or not isinstance(num_clients, numbers.Integral) or num_clients < 1:
        raise ConfigError(f"federated.clients: {num_clients!r} is not allowed; use an integer >= 1")
    if isinstance(lam, bool) or not isinstance(lam, numbers.Real) or not math.isfinite(lam) or not 0 <= lam <= 1:
        raise ConfigError(f"federated.heterogeneity (λ): {lam!r} is not allowed; use a number from 0 to 1")
    return int(num_clients), float(lam)


def _main_clients(sizes: np.ndarray, num_clients: int) -> np.ndarray:
    """How many clients have each environment as their main one (clients >= non-empty environments)."""
    shares = (sizes > 0).astype(np.int64)
    while shares.sum() < num_clients:
        per_client = np.divide(sizes.astype(float), shares.astype(float), out=np.zeros(len(sizes)), where=shares != 0)
        shares[int(np.argmax(per_client))] += 1
    return shares


def _counts_few_environments(sizes: np.ndarray, num_clients: int, lam: float) -> np.ndarray:
    shares = _main_clients(sizes, num_clients)
    main_of_client = np.repeat(np.arange(len(sizes)), shares)
    share_of_main = np.array([1 / s if s else 0.0 for s in shares])
    rows = []
    for main in main_of_client:
        onehot = np.zeros(len(sizes))
        onehot[main] = 1
        rows.append(sizes * (share_of_main * onehot * (1 - lam) + (1 / num_clients) * lam))
    exact = np.array(rows)
    counts = exact.astype(np.int64)
    leftover = np.rint(np.sum(exact - counts, axis=0)).astype(np.int64)
    for env, extra in enumerate(leftover):
        counts[:extra, env] += 1
    return counts


def _counts_many_environments(sizes: np.ndarray, num_clients: int, lam: float) -> np.ndarray:
    whole = np.zeros((num_clients, len(sizes)))
    for env in sorted(range(len(sizes)), key=lambda e: (-sizes[e], -e)):
        whole[int(np.argmin(whole.sum(axis=1))), env] = sizes[env]
    even = np.tile(sizes / num_clients, (num_clients, 1))
    counts = np.floor(even * lam + whole * (1 - lam)).astype(np.int64)
    for env, extra in enumerate(sizes - counts.sum(axis=0)):
        counts[:extra, env] += 1
    return counts


def client_counts(sizes: Sequence[int], num_clients: int, lam: float) -> np.ndarray:
    """A (clients, environments) integer array: how many examples of each environment each client gets.

    `sizes` are the environments' example counts, in order; `lam` is FedDG-Benchmark's λ in [0, 1]."""
    num_clients, lam = _check(num_clients, lam)
    sizes = np.asarray(sizes, dtype=np.int64)
    if sizes.ndim != 1 or len(sizes) == 0 or (sizes < 0).any() or sizes.sum() == 0:
        raise ConfigError(f"federated: the training environments' sizes {sizes.tolist()} cannot be partitioned; "
                          "need at least one environment with examples")
    if int((sizes > 0).sum()) <= num_clients:
        counts = _counts_few_environments(sizes, num_clients, lam)
    else:
        counts = _counts_many_environments(sizes, num_clients, lam)
    assert (counts >= 0).all() and (counts.sum(axis=0) == sizes).all(), "partition lost or invented examples"
    return counts


def client_partition(environments: Environments, num_clients: int, lam: float, seed: int) -> list[list[tuple[Hashable, int]]]:
    """Each client's examples as (environment, index) pairs, every example given to exactly one client.

    `environments` maps an environment's name (or, for a sequence, its position) to its example indices;
    the result is deterministic for a seed. A client left without examples (more clients than examples
    allow at this λ) is a ConfigError naming the client."""
    items = list(environments.items()) if isinstance(environments, Mapping) else list(enumerate(environments))
    counts = client_counts([len(indices) for _, indices in items], num_clients, lam)
    rng = np.random.default_rng(seed)
    shuffled = [rng.permutation(np.asarray(indices, dtype=np.int64)) for _, indices in items]
    start = np.zeros(len(items), dtype=np.int64)
    clients: list[list[tuple[Hashable, int]]] = []
    for row in counts:
        own: list[tuple[Hashable, int]] = []
        for e, (name, _) in enumerate(items):
            own += [(name, int(i)) for i in shuffled[e][start[e]:start[e] + row[e]]]
            start[e] += row[e]
        clients.append(own)
    empty = [k for k, own in enumerate(clients) if not own]
    if empty:
        raise ConfigError(
            f"federated: client {empty[0]} of {len(clients)} gets no training examples at λ={float(lam):g} "
            f"(environment sizes {[len(i) for _, i in items]}); use fewer clients or a larger λ"
        )
    return clients


def by_environment(pairs: Sequence[tuple[Hashable, int]]) -> dict[Hashable, list[int]]:
    """One client's (environment, index) pairs grouped per environment, in order of first appearance
    (the per-environment index lists a client's loaders and multi-domain objectives need)."""
    grouped: dict[Hashable, list[int]] = {}
    for env, index in pairs:
        grouped.setdefault(env, []).append(index)
    return grouped


__all__ = ["by_environment", "client_counts", "client_partition"]
