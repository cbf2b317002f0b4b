"""The Flower apps. The ClientApp answers three messages: `query` (which client this node is), `train`
(a round's local work from the global weights) and `evaluate` (the global model on the client's
validation splits); each reply carries a JSON report with the client's energy reading and the bytes it
received and sent. The ServerApp runs dagrad.federated.server over the Grid Flower gives it.

Both apps take the experiment from a `Source`: in the simulation runtime the objects themselves (a
closure), in the deployment runtime the run config (`dagrad-config`, the config as JSON, and `dagrad-out`)
and each SuperNode's node config (`partition-id`, and optionally `state-dir`, where the client keeps its
state between rounds)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from dagrad.config.experiment import Experiment
from dagrad.federated.flower import require_flwr
from dagrad.federated.local import ClientSite
from dagrad.federated.server import FederatedServer, device_of
from dagrad.utils.errors import DagradError
from dagrad.utils.plain import plain

#: (Flower context) -> (experiment, folder): where an app finds its experiment and its folder
Source = Callable[[Any], tuple[Experiment, Path]]

_SITES: dict[tuple[str, int, str], ClientSite] = {}  # one per client per process (Ray reuses its workers)


def site_for(exp: Experiment, client: int, folder: Path) -> ClientSite:
    """This process's ClientSite for `client` (built on its first message, reused for the next)."""
    key = (exp.run_id, int(client), str(folder))
    if key not in _SITES:
        _SITES[key] = ClientSite(exp, client, folder, str(device_of(exp.cfg.device)))
    return _SITES[key]


def client_app(source: Source) -> Any:
    """A Flower ClientApp running dagrad's local work for the node's client (its `partition-id`)."""
    flwr = require_flwr()
    app = flwr.clientapp.ClientApp()

    def site(context: Any) -> ClientSite:
        exp, folder = source(context)
        state_dir = context.node_config.get("state-dir")
        return site_for(exp, int(context.node_config["partition-id"]), Path(state_dir) if state_dir else folder)

    @app.query()
    def _query(msg: Any, context: Any) -> Any:
        return _reply(flwr, msg, {"client": int(context.node_config["partition-id"])})

    @app.train()
    def _train(msg: Any, context: Any) -> Any:
        try:
            s = site(context)
            arrays = msg.content["arrays"]
            config = msg.content["config"]
            result = s.train(arrays.to_torch_state_dict(), int(config["round"]), float(config.get("proximal-mu", 0.0)))
        except DagradError as exc:
            return _reply(flwr, msg, error=str(exc))
        out = flwr.app.ArrayRecord(result.state)
        report = {"client": s.client, "examples": result.examples, "steps": result.steps, "kind": result.kind,
                  "stats": result.stats, "sampler_stats": result.sampler_stats,
                  "energy": result.energy.to_dict() if result.energy is not None else None,
                  "bytes_received": arrays.count_bytes(), "bytes_sent": out.count_bytes()}
        if result.validation is not None:  # FedDG-GA: the local model on the client's validation splits
            report["validation"] = {"splits": result.validation["splits"],
                                    "energy": result.validation["energy"].to_dict()}
        return _reply(flwr, msg, report, arrays=out, metrics={"num-examples": result.examples})

    @app.evaluate()
    def _evaluate(msg: Any, context: Any) -> Any:
        try:
            s = site(context)
            arrays = msg.content["arrays"]
            splits, energy = s.evaluate(arrays.to_torch_state_dict())
        except DagradError as exc:
            return _reply(flwr, msg, error=str(exc))
        report = {"client": s.client, "splits": splits, "energy": energy.to_dict(),
                  "bytes_received": arrays.count_bytes(), "bytes_sent": 0}
        return _reply(flwr, msg, report)

    return app


def _reply(flwr: Any, msg: Any, report: dict | None = None, *, arrays: Any = None, metrics: dict | None = None,
           error: str | None = None) -> Any:
    """A reply carrying the JSON report (or a dagrad error's one line), and arrays and metrics for a strategy."""
    content = flwr.app.RecordDict()
    if error is not None:
        content["report"] = flwr.app.ConfigRecord({"error": error})
    else:
        content["report"] = flwr.app.ConfigRecord({"json": json.dumps(plain(report or {}))})
    if arrays is not None:
        content["arrays"] = arrays
    if metrics is not None:
        content["metrics"] = flwr.app.MetricRecord(metrics)
    return flwr.app.Message(content, reply_to=msg)


def server_app(source: Source, resume: bool = False, progress: Any = True,
               on_end: Callable[[], None] = lambda: None) -> Any:
    """A Flower ServerApp running dagrad's rounds into the experiment's folder; `on_end` is called when its
    rounds end (the runtime still up)."""
    flwr = require_flwr()
    app = flwr.serverapp.ServerApp()

    @app.main()
    def _main(grid: Any, context: Any) -> None:
        exp, folder = source(context)
        try:
            FederatedServer(exp, folder, resume=resume, progress=progress).run(grid)
        finally:
            on_end()

    return app
