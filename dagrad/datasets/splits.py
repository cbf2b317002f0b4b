"""DomainBed's split: every environment shuffled with a seed hashed from (trial seed, environment
index); the first `holdout_fraction` becomes the `out` split (validation), the rest the `in` split."""

from __future__ import annotations

import numpy as np

from dagrad.seeding import seed_hash


def random_split(n: int, holdout_fraction: float, trial_seed: int, env_index: int) -> tuple[np.ndarray, np.ndarray]:
    """(in indices, out indices), disjoint, covering range(n), determined by the seeds alone."""
    order = np.random.RandomState(seed_hash(trial_seed, env_index)).permutation(n)
    n_out = int(n * holdout_fraction)
    return np.sort(order[n_out:]), np.sort(order[:n_out])
