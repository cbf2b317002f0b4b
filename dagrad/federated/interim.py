"""The one place this package reaches the federated methods' pure functions (dagrad.federated.partition,
.aggregate): until they land, the minimal versions below do the job, and when they do, these functions
become thin calls into them, so nothing else here changes.

`split_domains` spreads each training environment's examples over the clients by a heterogeneity λ, as
FedDG-Benchmark describes it: λ = 0 keeps every domain on its own clients (domain separation), λ = 1
gives every client an even share of every domain, and in between a fraction λ of each domain is spread
over all clients and the rest over the domain's own clients."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from dagrad.utils.seeding import seed_hash


def owners(domains: list[int], clients: int) -> dict[int, list[int]]:
    """Each domain's own clients: with at least as many clients as domains, client c belongs to domain
    c mod D (so every domain has one); with fewer, domain number i belongs to client i mod `clients`."""
    if clients >= len(domains):
        return {d: [c for c in range(clients) if c % len(domains) == i] for i, d in enumerate(domains)}
    return {d: [i % clients] for i, d in enumerate(domains)}


def split_domains(sizes: Mapping[int, int], clients: int, lam: float, seed: int) -> list[dict[int, np.ndarray]]:
    """Per client, {domain: sorted positions into that domain's examples}; every example goes to exactly one
    client. `sizes` maps each training domain to its number of examples; the shuffle is seeded by `seed`."""
    domains = sorted(sizes)
    own = owners(domains, clients)
    out: list[dict[int, list[np.ndarray]]] = [{} for _ in range(clients)]
    for d in domains:
        n = int(sizes[d])
        order = np.random.default_rng(seed_hash("federated.split", seed, d)).permutation(n)
        spread = int(round(lam * n))
        for c, part in enumerate(np.array_split(order[:spread], clients)):
            out[c].setdefault(d, []).append(part)
        for c, part in zip(own[d], np.array_split(order[spread:], len(own[d]))):
            out[c].setdefault(d, []).append(part)
    shares = []
    for mine in out:
        joined = {d: np.sort(np.concatenate(parts)).astype(np.int64) for d, parts in mine.items()}
        shares.append({d: p for d, p in joined.items() if len(p)})
    return shares
