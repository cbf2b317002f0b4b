"""Shared fixtures: offline, headless, and a tiny digits experiment that trains in well under a second."""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One intra-op thread per process: tests (and the subprocesses they start) run side by side, and two
# processes each spinning two OpenMP threads on two cores run tiny convolutions ~30x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

TINY = [
    "data.image_size=12", "network.options.width=8", "data.batch_size=8", "epochs=3", "steps_per_epoch=3",
    "data.eval_batch_size=512",
]


@pytest.fixture(autouse=True)
def _quiet_estimate_warning():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ESTIMATED.*")
        yield


@pytest.fixture
def tiny_config():
    """A factory: tiny_config("algorithm.name=coral", ...) -> an ExperimentConfig checked against the registries."""
    from dagrad.config.experiment import load_experiment

    def make(*overrides: str):
        return load_experiment(None, [*TINY, *overrides]).cfg

    return make
