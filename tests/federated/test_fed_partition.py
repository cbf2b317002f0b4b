"""The heterogeneity-λ partition pins FedDG-Benchmark's `NonIIDSplitter.split` (inouye-lab/FedDG_Benchmark,
src/splitter.py): the two count rules (clients >= non-empty domains: main clients by the largest
examples-per-main-client, truncated mix, rounded leftover to the first clients; fewer clients: greedy
whole domains to the emptiest client, floored mix, remainder to the first clients), then one
`default_rng(seed).permutation` per domain, in domain order, handed out in consecutive runs.

The expected counts below are worked by hand from that definition (the arithmetic is in each comment).
While writing this module its output was also compared with the reference splitter itself on ~2,600 random
cases with distinct domain sizes, index for index, with no difference."""

from __future__ import annotations

import numpy as np
import pytest

from dagrad.federated.partition import by_environment, client_counts, client_partition
from dagrad.utils.errors import ConfigError


@pytest.mark.parametrize(
    "sizes, clients, lam, expected",
    [
        # clients >= domains (splitter.py, the `non_empty_num_domains <= self.num_shards` branch).
        # main clients: [1, 1]; examples per main client 6 vs 4 -> domain 0 gets the third: [2, 1].
        # λ=0: domain 0 split 3/3 between clients 0 and 1; client 2 holds all of domain 1.
        ([6, 4], 3, 0.0, [[3, 0], [3, 0], [0, 4]]),
        # λ=0.5: client 0/1: 6·(0.5/2 + 0.5/3) = 2.5, 4·(0.5/3) = 0.67; client 2: 6·0.5/3 = 1, 4·(0.5 + 0.5/3) = 2.67.
        # truncated [[2,0],[2,0],[1,2]]; leftovers rint(0.5+0.5+0) = 1 and rint(3·0.67) = 2 go to the first clients.
        ([6, 4], 3, 0.5, [[3, 1], [2, 1], [1, 2]]),
        # λ=1: 2 each of domain 0; 4/3 each of domain 1 truncated to 1, leftover rint(3·0.33) = 1 to client 0.
        ([6, 4], 3, 1.0, [[2, 2], [2, 1], [2, 1]]),
        # one domain, two clients at λ=0: 1.5 each, truncated to 1, leftover 1 to client 0
        ([3], 2, 0.0, [[2], [1]]),
        # the leftover goes to the first clients even when domain 1 is not client 0's main domain:
        # main clients [1, 2]; client 0 = 1 of domain 0; clients 1, 2 = 2.5 of domain 1 -> 2 + 2, leftover 1 to client 0
        ([1, 5], 3, 0.0, [[1, 1], [0, 2], [0, 2]]),
        # an empty domain (the held-out one inside the id range) takes no client and no examples
        ([6, 0, 4], 3, 0.5, [[3, 0, 1], [2, 0, 1], [1, 0, 2]]),
        # fewer clients than domains (the `else` branch): greedy by size, 5 -> client 0, 3 -> client 1,
        # 2 -> client 1 (totals 5 vs 3)
        ([5, 3, 2], 2, 0.0, [[5, 0, 0], [0, 3, 2]]),
        # λ=0.5: mix of the greedy rows and [2.5, 1.5, 1]: [[3.75, .75, .5], [1.25, 2.25, 1.5]] floored
        # [[3,0,0],[1,2,1]]; remainders 1, 1, 1 go to client 0
        ([5, 3, 2], 2, 0.5, [[4, 1, 1], [1, 2, 1]]),
        # λ=1: [2.5, 1.5, 1] floored [2, 1, 1] each; remainder 1 of domain 0 to client 0
        ([5, 3, 2], 2, 1.0, [[3, 2, 1], [2, 1, 1]]),
        # equal sizes: the later domain first (2 -> client 0, 1 -> client 1, 0 -> client 0 on the tie 2 vs 2)
        ([2, 2, 2], 2, 0.0, [[2, 0, 2], [0, 2, 0]]),
    ],
)
def test_counts_follow_the_reference_definition(sizes, clients, lam, expected):
    assert client_counts(sizes, clients, lam).tolist() == expected


def test_examples_are_the_reference_permutation_handed_out_in_runs():
    envs = {"a": [10, 11, 12, 13, 14, 15], "b": [20, 21, 22, 23]}
    got = client_partition(envs, 3, 0.5, seed=0)
    # counts [[3, 1], [2, 1], [1, 2]] (above); one permutation per domain from one generator, in domain order
    rng = np.random.default_rng(0)
    a, b = rng.permutation(envs["a"]).tolist(), rng.permutation(envs["b"]).tolist()
    expected = [
        [("a", i) for i in a[0:3]] + [("b", i) for i in b[0:1]],
        [("a", i) for i in a[3:5]] + [("b", i) for i in b[1:2]],
        [("a", i) for i in a[5:6]] + [("b", i) for i in b[2:4]],
    ]
    assert got == expected
    # pinned, so a change in the generator or the order shows up
    assert got == [[("a", 13), ("a", 12), ("a", 15), ("b", 21)], [("a", 14), ("a", 10), ("b", 23)],
                   [("a", 11), ("b", 20), ("b", 22)]]


@pytest.mark.parametrize("clients", [1, 2, 5, 7])
@pytest.mark.parametrize("lam", [0.0, 0.3, 0.5, 1.0])
def test_every_example_is_assigned_exactly_once_and_deterministically(clients, lam):
    envs = [list(range(0, 23)), list(range(100, 117)), list(range(200, 240)), list(range(300, 311)), list(range(400, 419))]
    got = client_partition(envs, clients, lam, seed=3)
    assert len(got) == clients
    flat = [pair for client in got for pair in client]
    assert sorted(flat) == sorted((e, i) for e, indices in enumerate(envs) for i in indices)
    assert got == client_partition(envs, clients, lam, seed=3)
    assert got != client_partition(envs, clients, lam, seed=4)


def test_lambda_zero_gives_one_domain_per_client():
    sizes = [20, 20, 20, 20, 20]
    counts = client_counts(sizes, 5, 0.0)
    assert counts.tolist() == np.diag(sizes).tolist()
    # ten clients: every domain is the main domain of two clients, 10 examples each, and nothing else
    counts = client_counts(sizes, 10, 0.0)
    assert counts.tolist() == np.repeat(np.diag([10] * 5), 2, axis=0).tolist()
    # two clients over five domains: whole domains only, as even as the greedy rule makes them
    counts = client_counts(sizes, 2, 0.0)
    assert ((counts == 0) | (counts == 20)).all() and sorted(counts.sum(axis=1).tolist()) == [40, 60]


def test_lambda_one_gives_every_client_the_same_mix():
    counts = client_counts([20, 30, 40, 50, 60], 10, 1.0)
    assert counts.tolist() == [[2, 3, 4, 5, 6]] * 10
    counts = client_counts([20, 30, 40, 50, 60], 2, 1.0)
    assert counts.tolist() == [[10, 15, 20, 25, 30]] * 2


def test_one_client_gets_everything():
    envs = [[0, 1, 2], [5, 6]]
    (only,) = client_partition(envs, 1, 0.5, seed=0)
    assert sorted(only) == [(0, 0), (0, 1), (0, 2), (1, 5), (1, 6)]


@pytest.mark.parametrize("lam", [-0.1, 1.5, float("nan"), float("inf"), True, "0.5", None])
def test_bad_lambda_is_one_line(lam):
    with pytest.raises(ConfigError, match=r"^federated.heterogeneity \(λ\): .* use a number from 0 to 1$"):
        client_partition([[0, 1], [2, 3]], 2, lam, seed=0)


@pytest.mark.parametrize("clients", [0, -3, 2.5, True, "4", None])
def test_bad_client_count_is_one_line(clients):
    with pytest.raises(ConfigError, match=r"^federated.clients: .* use an integer >= 1$"):
        client_partition([[0, 1], [2, 3]], clients, 0.5, seed=0)


def test_no_examples_is_one_line():
    with pytest.raises(ConfigError, match="need at least one environment with examples"):
        client_partition([[], []], 2, 0.5, seed=0)
    with pytest.raises(ConfigError, match="need at least one environment with examples"):
        client_partition([], 2, 0.5, seed=0)


def test_a_client_left_without_examples_is_one_line():
    # main clients [2, 1]; clients 0 and 1 share one example of domain 0 (0.5 each, truncated to 0, the
    # leftover 1 to client 0), so client 1 gets nothing
    assert client_counts([1, 1], 3, 0.0).tolist() == [[1, 0], [0, 0], [0, 1]]
    with pytest.raises(ConfigError, match=r"^federated: client 1 of 3 gets no training examples at λ=0 .*use fewer clients"):
        client_partition([[7], [8]], 3, 0.0, seed=0)


def test_a_clients_pairs_grouped_per_environment():
    got = client_partition({"a": [10, 11, 12, 13, 14, 15], "b": [20, 21, 22, 23]}, 3, 0.5, seed=0)
    assert by_environment(got[0]) == {"a": [13, 12, 15], "b": [21]}
    assert by_environment(got[2]) == {"a": [11], "b": [20, 22]}
    assert by_environment([]) == {}
