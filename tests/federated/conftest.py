"""Tiny federated runs on the embedded digits, delivered in this process (no Ray) unless a test says so."""

from __future__ import annotations

from typing import Any, Callable

import pytest

pytest.importorskip("flwr")

from dagrad.config.experiment import Experiment, load_experiment  # noqa: E402
from dagrad.federated.apps import client_app  # noqa: E402
from dagrad.federated.inprocess import InProcessGrid  # noqa: E402
from dagrad.federated.records import CLIENTS_FOLDER  # noqa: E402
from dagrad.federated.server import FederatedServer  # noqa: E402

TINY = ["network.options.width=8", "data.batch_size=8", "data.augment=false", "epochs=2",
        "federated.local_steps=2", "energy.backend=estimate"]


def tiny(*overrides: str) -> Experiment:
    """federated/digits, small and fast, with `overrides` on top."""
    return load_experiment(["federated/digits"], [*TINY, *overrides])


class Recording(InProcessGrid):
    """An in-process grid that keeps every message and reply, and can stop the run at a chosen message."""

    def __init__(self, app: Any, clients: int, stop: Callable[[Any], bool] = lambda m: False):
        super().__init__(app, clients)
        self.sent: list[Any] = []
        self.replies: list[Any] = []
        self.stop = stop

    def send_and_receive(self, messages, timeout=None):
        messages = list(messages)
        for m in messages:
            if self.stop(m):
                raise KeyboardInterrupt("killed")
        self.sent += messages
        replies = super().send_and_receive(messages, timeout)
        self.replies += replies
        return replies


def run(exp: Experiment, out, resume: bool = False, stop: Callable[[Any], bool] = lambda m: False) -> Recording:
    """Run `exp` into `out` over a Recording grid; returns the grid (its messages and replies)."""
    app = client_app(lambda context: (exp, out / CLIENTS_FOLDER))
    grid = Recording(app, exp.cfg.federated.clients, stop)
    FederatedServer(exp, out, resume=resume, progress=False).run(grid)
    return grid


@pytest.fixture
def federated():
    return {"tiny": tiny, "run": run}
