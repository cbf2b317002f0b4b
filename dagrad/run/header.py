"""The lines one run writes to its records besides the summary: the header (what ran, where, how) and one
record per epoch. Pure functions of the run's state: writing them is the engine's job."""

from __future__ import annotations

import platform
from typing import Any, Optional

import numpy as np
import torch

from dagrad.config.experiment import Experiment
from dagrad.config.schema import OFF, to_dict
from dagrad.datasets.loading import START_METHOD
from dagrad.energy.hardware import describe_compute
from dagrad.records.files import FORMAT
from dagrad.run.epochs import EpochOutcome
from dagrad.run.parts import RunParts
from dagrad.version import __version__
from dagrad.records.distributed_section import distributed_section


def run_header(exp: Experiment, parts: RunParts, seed: int, idle: Optional[dict], dist: Any) -> dict:
    """The header line: the experiment (as given and resolved), its data, versions, hardware, meter,
    numerics, loading and, under several processes, how they split the work."""
    data, device, meter = parts.data, parts.device, parts.meter
    return {
        "type": "header", "format": FORMAT, "run_id": exp.run_id, "seed": seed, "config": to_dict(exp.cfg),
        "resolved": exp.canonical(), "hparams": parts.algorithm.hparams, "searched": exp.searched,
        "data": {"environments": data.suite.env_names, "train_envs": data.train_envs,
                 "test_envs": data.test_envs, "setting": data.setting, "steps_per_epoch": parts.steps,
                 "batch_size": data.batch_size, "unlabelled_splits": parts.stream.unlabelled_splits, **data.info},
        "versions": {"dagrad": __version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "hardware": {"platform": platform.platform(), "processor": platform.processor(),
                     "torch_threads": torch.get_num_threads(), "device": str(device)},
        "compute": describe_compute(),
        "meter": meter.describe(),
        "numerics": parts.numerics.describe(parts.algorithm),
        "loading": {"num_workers": data.num_workers, "eval_batch_size": data.eval_batch_size,
                    "worker_start": START_METHOD if data.num_workers else None,
                    "pin_memory": device.type == "cuda", "eval_batches": len(parts.eval_loader)},
        "idle_power": idle,
        **({"distributed": distributed_section(dist, meter, device)} if dist.active else {}),
    }


def sampler_name(exp: Experiment) -> str:
    """How the records name the run's sampler: its registered name, or "none" when GradSamp is off."""
    return exp.gradsamp.sampler.name if exp.gradsamp is not None else OFF


def epoch_record(exp: Experiment, parts: RunParts, epoch: int, updates: int, outcome: EpochOutcome, metrics: dict,
                 averaged: Optional[dict], energy: dict[str, Any], eval_flops: float,
                 setup: Optional[dict]) -> dict:
    """One epoch's line. `energy`: its train, eval and other readings (other may be None); `setup`: the
    setup window's, on the first epoch record this process writes."""
    train, evaluation, other = energy["train"], energy["eval"], energy.get("other")
    return {
        "type": "epoch", "epoch": epoch, "step": (epoch + 1) * parts.steps, "updates": updates,
        "kind": str(outcome.kind), "fallback": outcome.fallback,
        "sampler": sampler_name(exp),
        "metrics": metrics, "averaged_metrics": averaged, "update_stats": outcome.update_stats,
        "sampler_stats": outcome.sampler_stats or None,
        "averager": parts.averager.stats() if parts.averager else None,
        "energy": {"train": train.to_dict(), "eval": evaluation.to_dict(),
                   "other": other.to_dict() if other is not None else None,
                   **({"setup": setup} if setup else {})},
        "flops": {"train": outcome.flops, "eval": eval_flops, "convention": parts.flops.convention},
        "seconds": train.seconds + evaluation.seconds,
    }
