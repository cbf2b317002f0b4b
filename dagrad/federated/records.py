"""A federated run's record file and checkpoint, in the centralised run's formats (dagrad.records.files,
dagrad.run.checkpoint): the header names the run, its data and meter and the federated settings; each round
appends its line and then writes the checkpoint (weights only, atomically) with the records inside, so a
killed run resumes from the last round; the summary line closes the run."""

from __future__ import annotations

import platform
import shutil
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np
import torch

from dagrad.config.experiment import Experiment
from dagrad.config.schema import to_dict
from dagrad.datasets.bundle import DataBundle
from dagrad.energy.hardware import describe_compute
from dagrad.energy.ledger import job_energy
from dagrad.records.files import FORMAT, RECORDS_NAME, RecordFile
from dagrad.run.checkpoint import CHECKPOINT_NAME, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from dagrad.run.progress import RunProgress
from dagrad.utils.errors import CheckpointError, ConfigError
from dagrad.version import __version__

#: where the clients of a simulated run keep their state between rounds, inside the run folder
CLIENTS_FOLDER = "clients"


class FederatedRecords:
    """The run folder's records and checkpoint (the server writes both)."""

    def __init__(self, exp: Experiment, out: str | Path, data: DataBundle, steps: int, meter: Any,
                 progress: Any = True, device: str = "cpu"):
        self.exp, self.out, self.data, self.steps, self.meter = exp, Path(out), data, steps, meter
        self.device = device
        self.path = self.out / RECORDS_NAME
        self.file: Optional[RecordFile] = None
        self.progress = RunProgress.of(progress)

    # ------------------------------------------------------------------ starting and resuming
    def start(self) -> None:
        if self.path.exists():
            raise ConfigError(f"{self.out} already holds a run; pass --resume to continue it, --restart to move it "
                              f"aside and start afresh, or choose another --out")
        stale = self.out / CLIENTS_FOLDER
        if stale.is_dir():  # a previous attempt's client states (--restart moved its records aside)
            shutil.rmtree(stale)
        self.file = RecordFile(self.path)
        self.file.append(self.header())

    def restore(self, model: torch.nn.Module, gradsamp: Any, strategy: Any = None) -> tuple[int, int]:
        """Load the last round's checkpoint into the global model (and the server's GradSamp and strategy
        state, FedDG-GA's weights); returns (next round, updates so far)."""
        payload = load_checkpoint(self.out / CHECKPOINT_NAME, self.exp.run_id)
        try:
            model.load_state_dict(payload["algorithm"])
            if gradsamp is not None:
                gradsamp.load_state_dict(payload["gradsamp"], model)
            if strategy is not None:
                strategy.load_state_dict(payload["strategy"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise CheckpointError(f"cannot resume from {self.out / CHECKPOINT_NAME}: it does not match this "
                                  f"federated run ({type(exc).__name__})") from None
        set_rng_state(payload["rng"])
        self.file = RecordFile.resume(self.path, payload["epoch"], payload["records"])
        return int(payload["epoch"]), int(payload["updates"])

    def header(self) -> dict:
        exp, data = self.exp, self.data
        return {
            "type": "header", "format": FORMAT, "run_id": exp.run_id, "seed": exp.seed, "config": to_dict(exp.cfg),
            "resolved": exp.canonical(), "hparams": exp.hparams, "searched": exp.searched,
            "data": {"environments": data.suite.env_names, "train_envs": data.train_envs,
                     "test_envs": data.test_envs, "setting": data.setting, "steps_per_epoch": self.steps,
                     "batch_size": data.batch_size, "unlabelled_splits": [], **data.info},
            "versions": {"dagrad": __version__, "torch": torch.__version__, "numpy": np.__version__,
                         "python": platform.python_version(), "flwr": _flwr_version()},
            "hardware": {"platform": platform.platform(), "processor": platform.processor(),
                         "torch_threads": torch.get_num_threads(), "device": self.device},
            "compute": describe_compute(),
            "meter": self.meter.describe(),
            "idle_power": None,
            "federated": {"rounds": exp.cfg.epochs, "local_steps": self.steps,
                          "unit": "a record's epoch is a federated round"},
        }

    # ------------------------------------------------------------------ rounds
    def progress_start(self, start: int) -> None:
        self.progress.start(self.out, f"federated {self.exp.algorithm.name} on {self.exp.cfg.data.name}",
                            self.exp.cfg.epochs, start, self.data.test_envs, self.data.train_envs)

    def over_rounds(self, rounds: range) -> Iterable[int]:
        return self.progress.over_epochs(rounds)

    def round(self, line: dict, model: torch.nn.Module, gradsamp: Any, updates: int,
              strategy: Optional[dict] = None) -> None:
        """Append the round's line, then checkpoint the state after it (`strategy`: the server strategy's
        own state, FedDG-GA's weights)."""
        assert self.file is not None
        self.file.append(line)
        self.progress.epoch_done(self.file.lines[-1])
        save_checkpoint(self.out / CHECKPOINT_NAME, {
            "config_hash": self.exp.run_id, "epoch": line["epoch"] + 1, "updates": updates, "stopped": False,
            "algorithm": model.state_dict(), "gradsamp": gradsamp.state_dict() if gradsamp is not None else None,
            "rng": rng_state(), "records": self.file.lines, "strategy": strategy,
        })

    def finish(self, updates: int) -> None:
        """The summary line (once): the last round's global model is the one reported."""
        assert self.file is not None
        if any(line["type"] == "summary" for line in self.file.lines):
            return
        rounds = [line.get("federated", {}).get("bytes", {}) for line in self.file.lines if line["type"] == "epoch"]
        self.file.append({"type": "summary", "updates": updates, "stopped_early": False, "reported": "online",
                          "metrics": None, "other_energy": None, "kept": {},
                          "run_energy": job_energy(self.file.lines, []).to_dict(),
                          "federated": {"bytes": {key: sum(int(b.get(key, 0)) for b in rounds)
                                                  for key in ("clients_sent", "clients_received")}}})

    def close(self) -> None:
        self.progress.close()


def _flwr_version() -> Optional[str]:
    try:
        from importlib.metadata import version

        return version("flwr")
    except Exception:  # noqa: BLE001 - a missing distribution is not an error here
        return None
