"""A sampler, a schedule, an averager and an energy backend, each added as a new built-in would be: its
code and one `register` call, in one file, and nothing else anywhere. Importing this module registers them;
`unregister()` takes them out again (tests clean up after themselves)."""

from __future__ import annotations

import copy
from typing import Any, Iterable, Optional

import torch
from torch import Tensor, nn

from dagrad.averaging import AVERAGERS
from dagrad.energy.estimate import EstimateBackend
from dagrad.energy.select import BACKENDS, MeterContext
from dagrad.gradsamp.history import Layout
from dagrad.gradsamp.samplers import SAMPLERS, SCALE, Moments, Sampler
from dagrad.gradsamp.schedules import SCHEDULES, Schedule
from dagrad.registry import Option


class HalfStep(Sampler):
    """step = Delta / 2 exactly: half of the last epoch's move, no noise."""

    name = "half_step"

    def fit_flat(self, delta: Tensor, layout: Layout, moments: Optional[Moments] = None) -> dict[str, Tensor]:
        mu = (moments or Moments(delta, layout)).mean / 2
        return {"mu": mu, "sigma": torch.zeros_like(mu)}

    def _draw(self, delta: Tensor, layout: Layout, fit: dict, generator: torch.Generator, finish: bool) -> Tensor:
        return delta * 0.5


class EvenEpochs(Schedule):
    """The even epochs from `first` on."""

    name = "even_epochs"

    def __init__(self, first: int = 2, max_consecutive: Optional[int] = None, seed: int = 0) -> None:
        super().__init__(max_consecutive, seed)
        self.first = first

    def wants(self, epoch: int) -> bool:
        return epoch >= self.first and epoch % 2 == 0


class EpochMean:
    """The equal-weight mean of the epoch-end weights after the first `skip` epochs (SWA over epochs)."""

    def __init__(self, module: nn.Module, skip: int = 1) -> None:
        self.module, self.skip = module, skip
        self.total: dict[str, Tensor] = {}
        self.count = self.seen = 0

    def after_step(self, module: nn.Module) -> None:
        pass

    def after_epoch(self, module: nn.Module, val_loss: float, kind: str) -> None:
        self.seen += 1
        if self.seen <= self.skip:
            return
        for key, value in module.state_dict().items():
            if value.is_floating_point():
                self.total[key] = self.total.get(key, 0) + value.detach().to("cpu", torch.float64)
        self.count += 1

    def should_stop(self) -> bool:
        return False

    def averaged_module(self) -> Optional[nn.Module]:
        if not self.count:
            return None
        model = copy.deepcopy(self.module)
        state = model.state_dict()
        model.load_state_dict({**state, **{k: (v / self.count).to(state[k].dtype) for k, v in self.total.items()}})
        return model

    def finalize(self, batches: Optional[Iterable] = None, steps: Optional[int] = None) -> Optional[nn.Module]:
        return self.averaged_module()

    def state_dict(self) -> dict:
        return {"total": dict(self.total), "count": self.count, "seen": self.seen}

    def load_state_dict(self, d: dict) -> None:
        self.total, self.count, self.seen = dict(d["total"]), d["count"], d["seen"]

    def stats(self) -> dict:
        return {"n_averaged": self.count}


def fixed_watts(ctx: MeterContext) -> list[Any]:
    """The CPU at a fixed power per busy thread, whatever the machine (for tests)."""
    ctx.rejected.update(nvml="energy.backend=fixed_watts", rapl="energy.backend=fixed_watts")
    return [EstimateBackend(**ctx.opts("fixed_watts"))]


SAMPLERS.register("half_step", HalfStep, options={"scale": SCALE})
SCHEDULES.register("even_epochs", EvenEpochs, options={"first": Option(2, int, "first epoch to sample", low=0)})
AVERAGERS.register("epoch_mean", EpochMean, options={"skip": Option(1, int, "epochs left out first", low=0)})
BACKENDS.register("fixed_watts", fixed_watts, options={
    "watts_per_thread": Option(2.0, float, "W per busy thread", low=0.0, low_open=True)})


def unregister() -> None:
    for registry, name in ((SAMPLERS, "half_step"), (SCHEDULES, "even_epochs"), (AVERAGERS, "epoch_mean"),
                           (BACKENDS, "fixed_watts")):
        registry.unregister(name)
