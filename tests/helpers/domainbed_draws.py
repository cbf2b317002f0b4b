"""Check dagrad's hyperparameter defaults and random-search draws against numbers read from DomainBed.

The expected numbers in the algorithm tests were printed by DomainBed's own registry (HEAD b93c22a,
`hparams_registry.random_hparams(algorithm, dataset, misc.seed_hash(hparams_seed, trial_seed))`, which
is what its train.py does) and typed into the tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dagrad.config.experiment import load_experiment

DATASETS = {"RotatedMNIST": "rotated_digits", "PACS": "pacs", "DomainNet": "domain_net", "OfficeHome": "office_home",
            "TerraIncognita": "terra_incognita", "VLCS": "vlcs"}


def assert_draws(algorithm: str, dataset: str, hparams_seed: int, trial_seed: int, expected: dict) -> None:
    """dagrad's resolved hyperparameters (batch size included) equal DomainBed's draw, key by key."""
    overrides = [f"data.name={DATASETS[dataset]}", f"algorithm.name={algorithm}",
                 f"algorithm.hparams_seed={hparams_seed}", f"trial_seed={trial_seed}"]
    if dataset != "RotatedMNIST":
        overrides += ["network.name=resnet50", "data.test_envs=[0]"]
    exp = load_experiment(None, overrides)
    got = {**exp.hparams, "batch_size": exp.batch_size}
    for key, value in expected.items():
        if isinstance(value, (str, bool)):
            assert got[key] == value, key
        else:
            assert got[key] == pytest.approx(value, rel=1e-15, abs=0), key
        assert type(got[key]) is type(value), key


def featurizer(n_in: int = 6, n_out: int = 4, seed: int = 0) -> nn.Module:
    """A small linear featurizer with `n_outputs`, seeded."""
    torch.manual_seed(seed)
    f = nn.Sequential(nn.Flatten(), nn.Linear(n_in, n_out))
    f.n_outputs = n_out
    return f
