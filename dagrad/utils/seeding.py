"""Stable seeds derived from names, as DomainBed's seed_hash does, so adding a run never shifts another's."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def seed_hash(*parts: object) -> int:
    """A 31-bit integer determined only by the parts' reprs (stable across processes and Python runs)."""
    digest = hashlib.md5(repr(parts).encode("utf-8")).hexdigest()
    return int(digest[-8:], 16) % (2**31)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def generator(*parts: object) -> torch.Generator:
    """A private torch generator seeded from the parts, independent of the global RNG."""
    g = torch.Generator()
    g.manual_seed(seed_hash(*parts))
    return g
