"""The same apps in Flower's deployment runtime: one SuperLink and one SuperNode per client, started with
Flower's own commands, and the run submitted with `flwr run`. The Flower App is a folder holding only a
pyproject.toml (written by `write_app`) whose components are this module's `server` and `client` and whose
run config carries the experiment (`dagrad-config`, the config as JSON) and the server's run folder
(`dagrad-out`); dagrad itself is installed on every machine. Each SuperNode says which client it is with
`--node-config "partition-id=K num-partitions=N"`, and may name where its client keeps its state between
rounds (`state-dir=...`; default: <dagrad-out>/clients on its own machine).

    python -m dagrad.federated.deployment -c federated/digits --app APP_DIR --out RUN_DIR

writes the App folder for an experiment (see the README for the commands that run it)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional

from dagrad.config.experiment import Experiment, experiment_from_dict, load_experiment
from dagrad.config.schema import to_dict
from dagrad.federated.apps import client_app
from dagrad.federated.flower import require_flwr
from dagrad.federated.records import CLIENTS_FOLDER
from dagrad.utils.errors import ConfigError, DagradError

CONFIG_KEY, OUT_KEY, RESUME_KEY = "dagrad-config", "dagrad-out", "dagrad-resume"
MODULE = "dagrad.federated.deployment"  # (this module's name also when it runs as python -m)


def _source(context: Any) -> tuple[Experiment, Path]:
    """The experiment and the server's run folder, from the run config `flwr run` submitted."""
    config = context.run_config
    try:
        exp = experiment_from_dict(json.loads(str(config[CONFIG_KEY])))
        out = Path(str(config[OUT_KEY]))
    except KeyError as exc:
        raise ConfigError(f"federated deployment: the run config has no {exc.args[0]!r}; write the App with "
                          "write_app (python -m dagrad.federated.deployment)") from None
    return exp, out


def _client_source(context: Any) -> tuple[Experiment, Path]:
    exp, out = _source(context)
    return exp, out / CLIENTS_FOLDER


def _serve(grid: Any, context: Any) -> None:
    """The ServerApp's main: the rounds under the run folder's lock (resuming when the run config says so)."""
    from dagrad.federated.server import FederatedServer
    from dagrad.run.folder import open_run_folder

    exp, out = _source(context)
    with open_run_folder(out, resume=bool(context.run_config.get(RESUME_KEY, False))) as resume:
        FederatedServer(exp, out, resume=resume, progress="lines").run(grid)


def _apps() -> tuple[Any, Any]:
    flwr = require_flwr()
    server = flwr.serverapp.ServerApp()
    server.main()(_serve)
    return server, client_app(_client_source)


def write_app(folder: str | Path, exp: Experiment, out: str | Path, resume: bool = False) -> Path:
    """A Flower App folder for `exp` (its pyproject.toml), whose ServerApp writes the records into `out`."""
    import tomli_w

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = to_dict(exp.cfg)
    config["federated"]["runtime"] = "deployment"  # where it runs, not what it computes: the identity stays
    project = {
        "project": {"name": "dagrad-federated", "version": "1.0.0", "description": "dagrad federated DG run",
                    "license": "Apache-2.0", "dependencies": ["dagrad[federated]"]},
        "tool": {"flwr": {"app": {
            "publisher": "dagrad",
            "components": {"serverapp": f"{MODULE}:server", "clientapp": f"{MODULE}:client"},
            "config": {CONFIG_KEY: json.dumps(config, sort_keys=True), OUT_KEY: str(Path(out).resolve()),
                       RESUME_KEY: bool(resume)}}}},
    }
    path = folder / "pyproject.toml"
    path.write_text(tomli_w.dumps(project))
    return path


def main(argv: Optional[list[str]] = None) -> int:
    """Write the Flower App folder for an experiment (one line and exit code 2 on bad input)."""
    p = argparse.ArgumentParser(prog="python -m dagrad.federated.deployment", description=__doc__.split("\n\n")[0])
    p.add_argument("-c", "--config", action="append", default=[], help="config file or shipped name")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--app", type=Path, required=True, help="the Flower App folder to write")
    p.add_argument("--out", type=Path, required=True, help="the run folder the ServerApp writes")
    p.add_argument("--resume", action="store_true", help="the ServerApp continues the run in --out")
    args = p.parse_args(argv)
    try:
        exp = load_experiment(args.config, args.overrides)
        if exp.cfg.federated is None:
            raise ConfigError("this config has no federated: block; nothing to deploy")
        print(write_app(args.app, exp, args.out, args.resume))
    except DagradError as exc:
        print(f"dagrad: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
else:  # imported by Flower as the App's components
    try:
        server, client = _apps()
    except DagradError:  # Flower missing: importing this module for write_app still works
        server = client = None
