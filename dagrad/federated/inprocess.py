"""The apps' messages delivered by direct calls in this process: the same ServerApp logic and ClientApp,
without Ray or a network, one client after another. It is `federated.runtime: inprocess` (many small runs
on one machine, where Ray's start-up would cost more than the rounds), checks a federated run's arithmetic
quickly (the tests), and is the baseline that measures what Flower's runtimes add to a round. Replies are
aggregated in client order in every runtime, so its records equal the simulation runtime's."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from dagrad.config.experiment import Experiment
from dagrad.federated import build
from dagrad.federated.apps import client_app
from dagrad.federated.flower import require_flwr
from dagrad.federated.records import CLIENTS_FOLDER
from dagrad.federated.server import FederatedServer

FIRST_NODE = 101  # node ids as a Grid gives them: any integers, unrelated to the client numbers


class InProcessGrid:
    """A Grid whose nodes are one ClientApp called in this process, node k answering as client k."""

    def __init__(self, app: Any, clients: int):
        flwr = require_flwr()
        _claim_identity()
        self.app = app
        self.contexts = {FIRST_NODE + k: flwr.app.Context(run_id=1, node_id=FIRST_NODE + k,
                                                          node_config={"partition-id": k, "num-partitions": clients},
                                                          state=flwr.app.RecordDict(), run_config={})
                         for k in range(clients)}

    def get_node_ids(self) -> list[int]:
        return list(self.contexts)

    def send_and_receive(self, messages: Iterable[Any], timeout: float | None = None) -> list[Any]:
        return [self.app(m, self.contexts[m.metadata.dst_node_id]) for m in messages]


def _claim_identity() -> None:
    """Flower's messages name the run and node that sends them: outside its runtimes, this process is the
    server of run 1 (as Flower's own Python simulation API names itself)."""
    from flwr.common.constant import SUPERLINK_NODE_ID
    from flwr.supercore.task_identity import TaskIdentity

    for attr, value in (("task_id", 1), ("run_id", 1), ("node_id", SUPERLINK_NODE_ID)):
        try:
            getattr(TaskIdentity, attr)
        except RuntimeError:
            setattr(TaskIdentity, attr, value)


def run_in_process(exp: Experiment, out: str | Path, resume: bool = False, progress: Any = False) -> Path:
    """Run (or resume) `exp`'s rounds with every client in this process; returns the record file."""
    folder = Path(out)
    app = client_app(lambda context: (exp, folder / CLIENTS_FOLDER))
    grid = InProcessGrid(app, build.settings(exp).clients)
    return FederatedServer(exp, folder, resume=resume, progress=progress).run(grid)
