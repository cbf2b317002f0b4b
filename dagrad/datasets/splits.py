"""DomainBed's splits, reproduced index for index.

- in/out: every environment is shuffled with a seed hashed from (trial seed, environment index); the
  first `holdout_fraction` becomes the `out` split (validation), the rest the `in` split
  (`misc.split_dataset(env, int(len(env) * holdout_fraction), seed_hash(trial_seed, env_i))`).
- uda: for a test environment, DomainBed splits its `in` split again, *in the shuffled order of the first
  split* and with the same seed: the first `int(len(in) * uda_holdout_fraction)` become the `uda` split
  (the unlabelled inputs of domain adaptation), the rest stay `in` (where accuracy is reported).
- guard: GradSamp's guard gets its own small slice of each training environment's `in` split (dagrad's
  own, not in DomainBed), shuffled with seed_hash(trial_seed, env_i, "guard"), so the guard never scores
  draws on the `out` splits that training-domain validation selects on.
"""

from __future__ import annotations

import numpy as np

from dagrad.utils.seeding import seed_hash

#: the label mixed into the guard slice's seed
GUARD_SEED_LABEL = "guard"


def _shuffled(n: int, seed: int) -> np.ndarray:
    """DomainBed's `np.random.RandomState(seed).shuffle(list(range(n)))`, as an array."""
    return np.random.RandomState(seed).permutation(n)


def domainbed_split(n: int, holdout_fraction: float, trial_seed: int, env_index: int) -> tuple[np.ndarray, np.ndarray]:
    """(in indices, out indices) in DomainBed's shuffled order (what its uda split is cut from)."""
    order = _shuffled(n, seed_hash(trial_seed, env_index))
    n_out = int(n * holdout_fraction)
    return order[n_out:], order[:n_out]


def random_split(n: int, holdout_fraction: float, trial_seed: int, env_index: int) -> tuple[np.ndarray, np.ndarray]:
    """(in indices, out indices), disjoint, covering range(n), sorted, determined by the seeds alone."""
    in_idx, out_idx = domainbed_split(n, holdout_fraction, trial_seed, env_index)
    return np.sort(in_idx), np.sort(out_idx)


def uda_split(in_idx: np.ndarray, fraction: float, trial_seed: int, env_index: int) -> tuple[np.ndarray, np.ndarray]:
    """(the rest of `in`, the `uda` split), sorted: DomainBed's second split of a test environment's `in`
    split, `in_idx` given in the order DomainBed's first split left it (see `domainbed_split`)."""
    order = _shuffled(len(in_idx), seed_hash(trial_seed, env_index))
    n_uda = int(len(in_idx) * fraction)
    return np.sort(in_idx[order[n_uda:]]), np.sort(in_idx[order[:n_uda]])


def guard_split(in_idx: np.ndarray, per_env: int, trial_seed: int, env_index: int) -> tuple[np.ndarray, np.ndarray]:
    """(the rest of `in`, the guard's slice of `per_env` examples), sorted, chosen by
    seed_hash(trial_seed, env_index, "guard") alone."""
    order = _shuffled(len(in_idx), seed_hash(trial_seed, env_index, GUARD_SEED_LABEL))
    idx = np.asarray(in_idx)
    return np.sort(idx[order[per_env:]]), np.sort(idx[order[:per_env]])
