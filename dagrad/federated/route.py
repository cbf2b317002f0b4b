"""Where `dagrad train` sends an experiment: a config with a `federated:` block runs its rounds on Flower
(the simulation runtime here; the deployment runtime is started with Flower's own commands, see
dagrad.federated.deployment), any other runs centrally (dagrad.run.training). One function, so the command
line and the API route the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagrad.config.experiment import Experiment, resolve
from dagrad.config.schema import ExperimentConfig
from dagrad.plugins import NO_PLUGINS, PluginConsent
from dagrad.records.files import RECORDS_NAME
from dagrad.utils.errors import ConfigError


def is_federated(exp: Experiment | ExperimentConfig) -> bool:
    cfg = exp.cfg if isinstance(exp, Experiment) else exp
    return cfg.federated is not None


def train_experiment(experiment: Experiment | ExperimentConfig, out: str | Path, resume: bool = False, progress: Any = True,
          *, restart: bool = False, plugins: PluginConsent = NO_PLUGINS) -> Path:
    """Run (or resume) one experiment in `out`, federated or centralised; returns its record file."""
    exp = experiment if isinstance(experiment, Experiment) else resolve(experiment, plugins)
    if not is_federated(exp):
        from dagrad.run.training import train_run

        return train_run(exp, out, resume=resume, progress=progress, restart=restart, plugins=plugins)
    return train_federated(exp, out, resume=resume, restart=restart, progress=progress)


def train_federated(exp: Experiment, out: str | Path, resume: bool = False, restart: bool = False,
                    progress: Any = True) -> Path:
    """A federated experiment's rounds in Flower's simulation runtime (or, with federated.runtime=inprocess,
    the same apps called in this process), holding the run folder's lock."""
    from dagrad.federated.build import check_supported
    from dagrad.federated.flower import require_flwr
    from dagrad.run.folder import open_run_folder

    fed = exp.cfg.federated
    if fed.runtime == "deployment":
        raise ConfigError("federated.runtime=deployment runs under Flower's own commands (flower-superlink, "
                          "flower-supernode, flwr run), not `dagrad train`; use federated.runtime=simulation here")
    check_supported(exp)
    require_flwr(simulation=fed.runtime == "simulation")
    from dagrad.federated.build import build_data, check_clients

    check_clients(exp, build_data(exp))
    if fed.runtime == "inprocess":
        from dagrad.federated.inprocess import run_in_process as start
    else:
        from dagrad.federated.simulation import simulate as start

    with open_run_folder(out, resume=resume, restart=restart) as resume:
        if resume and _finished(Path(out), exp.cfg.epochs):
            return Path(out) / RECORDS_NAME  # nothing left to run: no runtime started
        return start(exp, out, resume=resume, progress=progress)


def _finished(out: Path, rounds: int) -> bool:
    """Whether the run in `out` has run every round and written its summary."""
    from dagrad.records.files import read_records
    from dagrad.utils.errors import DagradError

    try:
        lines = read_records(out / RECORDS_NAME)
    except DagradError:
        return False
    epochs = [line["epoch"] for line in lines if line["type"] == "epoch"]
    return bool(lines) and lines[-1]["type"] == "summary" and len(epochs) == rounds
