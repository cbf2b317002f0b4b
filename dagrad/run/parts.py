"""The parts of one run, built from its Experiment before anything is written: device, meter, numerics,
data, algorithm, batch stream and evaluation loader, GradSamp, the averager and the FLOP tally.

Every part is built from what the Experiment holds (`Resolved.build` for a registered component); nothing
here reads a component's settings from the raw config or checks them again. The order is fixed (the
random streams the data split, the model's initialisation and the guard slice draw from follow it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch

from dagrad import datasets
from dagrad.algorithms.registry import featurizer_input_shape
from dagrad.config.experiment import Experiment
from dagrad.datasets.loading import start_fork_server
from dagrad.energy import build_meter
from dagrad.energy.flops import FlopsTally
from dagrad.energy.ledger import Gaps
from dagrad.energy.meter import Meter
from dagrad.gradsamp import GradSamp
from dagrad.registry import target_module
from dagrad.run.numerics import Numerics
from dagrad.utils.errors import ConfigError

#: examples per training environment held out for GradSamp's guard (when it is on)
GUARD_EXAMPLES_PER_ENV = 32


def resolve_device(name: str) -> torch.device:
    """The run's device; CUDA as `cuda:N` (torch's current device), the one GPU the job uses and meters.
    cuDNN's determinism and TF32 flags are set by `Numerics` (DomainBed's by default)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    elif name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for but no CUDA device is available; use device=cpu or auto")
    if name == "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device(name)


@dataclass
class RunParts:
    """What one run trains with (see the module docstring)."""

    device: torch.device
    meter: Meter
    gaps: Gaps  # what the meter records as `other` between the metered phases, from startup on
    numerics: Numerics
    data: Any  # a datasets.DataBundle
    algorithm: Any  # an Algorithm on the device
    steps: int  # updates per trained epoch
    stream: Any  # the training batches, epoch by epoch
    eval_loader: Any
    gradsamp: Optional[GradSamp]
    averager: Optional[Any]  # an averaging.Averager
    flops: FlopsTally


def build_parts(exp: Experiment, seed: int, dist: Any) -> RunParts:
    """The run's parts for this process (`dist`: dagrad.run.distributed's view of it). The meter comes
    first, so startup is metered (as `other`); it is closed again if a later part fails to build."""
    cfg = exp.cfg
    device = resolve_device(cfg.device)
    if cfg.data.num_workers > 0:  # the workers' fork server imports torch while this process sets up
        start_fork_server([target_module(exp.spec.builder)])
    meter = build_meter(exp.energy, str(device), read_package=dist.reads_node)  # a node's RAPL: its first process
    try:
        return _build_rest(exp, seed, dist, device, meter, Gaps(meter))
    except BaseException:
        meter.close()
        raise


def _build_rest(exp: Experiment, seed: int, dist: Any, device: torch.device, meter: Meter,
                gaps: Gaps) -> RunParts:
    cfg, gradsamp = exp.cfg, exp.gradsamp
    numerics = exp.numerics.on(device)
    guard_on = gradsamp is not None and gradsamp.guard
    data = datasets.build(exp.data_config(), cfg.trial_seed, cfg.eval_mode,
                          guard_per_env=GUARD_EXAMPLES_PER_ENV if guard_on else 0, dataset=exp.dataset)
    featurizer = exp.network.build(input_shape=featurizer_input_shape(exp.algorithm.name, data.input_shape))
    algorithm = exp.algorithm.build(featurizer=featurizer, num_classes=data.num_classes,
                                    num_domains=len(data.train_envs), input_shape=data.input_shape).to(device)
    numerics.prepare(algorithm)
    steps = cfg.steps_per_epoch or data.default_steps_per_epoch()
    pin = device.type == "cuda"
    stream = data.training_loaders(steps, seed, unlabelled=algorithm.uses_unlabeled, pin_memory=pin,
                                   shard=dist.shard)
    eval_loader = data.eval_loader(pin_memory=pin, shard=dist)
    sampler = None
    if gradsamp is not None:
        guard = data.fixed_batch(GUARD_EXAMPLES_PER_ENV) if guard_on else None
        guard = tuple(t.to(device) for t in guard) if guard else None
        sampler = GradSamp(gradsamp, seed, guard)
    averager = exp.averager.build(module=algorithm) if exp.averager is not None else None
    return RunParts(device, meter, gaps, numerics, data, algorithm, steps, stream, eval_loader, sampler, averager,
                    FlopsTally(exp.energy.count_flops))
