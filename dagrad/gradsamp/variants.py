"""dagrad's own GradSamp readings, not the paper's: samplers that remember more than the last two epoch ends.

Both keep a little state per group of trainable tensors (see ``history.Layout``), on the parameters' device,
updated by ``observe`` after every *trained* epoch from that epoch's step Delta_t = theta_t - theta_{t-1}
(sampled epochs never feed their own draws back in). ``observe`` forms Delta once per trained epoch (one
transient flat tensor, no host sync); the draw itself costs what the built-ins cost, with the same one host
read per sampled epoch. The state is checkpointed as CPU tensors and plain data and restored exactly, so a
resumed run draws what the uninterrupted one did.

- ``shrink``: step_i ~ N(Delta_i, (c * rho * |Delta_i|)^2), rho = min(1, ||Delta_a|| / ||Delta_b||) per
  tensor, where Delta_a and Delta_b are the last two trained epochs' steps. ``element``'s jitter, damped by
  the rate at which successive epoch steps shrink: while a tensor still moves as far each epoch as the
  epoch before (rho = 1) the draw is ``element``; as its steps shrink, training is settling on it, the next
  step is expected to be rho times the last, and the draw's spread is sized to that expected step instead
  of the last one. rho needs no optimizer (learning rate, schedule): it is read off the trajectory itself.
  With one trained step known, rho = 1.
- ``ema``: step_i ~ N(m_i, (c * s)^2): the mean m is the exponential moving average of the trained epochs'
  steps (bias-corrected as Adam's moments are: m = sum_k w_k Delta_k with w_k proportional to decay^(age),
  summing to 1), so the step follows the trend of several epochs instead of the last one; the spread s,
  per tensor, is the root mean square of Delta - m: how far the latest step strayed from that trend, an
  estimate of the epoch-to-epoch noise of the step. decay 0 is ``extrapolate`` exactly (m = Delta, s = 0).
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from dagrad.run.epochs import EpochOutcome
from dagrad.utils.errors import CheckpointError
from dagrad.gradsamp.history import History, Layout, layout_for
from dagrad.gradsamp.samplers import Fit, Moments, Sampler, compute_dtype, tensor_sums

Group = dict[str, Any]
"""One group's state: tensors (on the parameters' device) and plain numbers."""


class Tracked(Sampler):
    """A sampler that folds every trained epoch's step into per-group state (see the module docstring)."""

    def __init__(self) -> None:
        self._groups: dict[Layout, Group] = {}

    def observe(self, history: History, outcome: EpochOutcome) -> None:
        if not outcome.trained or not history.ready:
            return
        try:
            parts = history.delta_parts("params")
        except RuntimeError:  # the model's trainable tensors changed: start afresh from the next two states
            self._groups = {}
            return
        live = set()
        for layout, _, delta in parts:
            live.add(layout)
            self._fold(layout, self._groups.setdefault(layout, {}), delta.to(compute_dtype(delta.dtype)))
        self._groups = {k: v for k, v in self._groups.items() if k in live}

    def _fold(self, layout: Layout, group: Group, delta: Tensor) -> None:
        """Update ``group`` with a trained epoch's flat step ``delta`` (a fresh tensor the method may keep)."""
        raise NotImplementedError

    def _group(self, layout: Layout, device: torch.device) -> Optional[Group]:
        """The group's state with its tensors on ``device`` (a restored state moves there on first use)."""
        group = self._groups.get(layout)
        if group is not None:
            for key, value in group.items():
                if isinstance(value, Tensor) and value.device != device:
                    group[key] = value.to(device, non_blocking=True)
        return group

    def state_dict(self) -> Optional[dict[str, Any]]:
        groups = []
        for layout, group in self._groups.items():
            groups.append({"names": list(layout.names), "shapes": [list(s) for s in layout.shapes],
                           "dtype": str(layout.dtype).removeprefix("torch."),
                           "state": {k: v.detach().to("cpu", copy=True) if isinstance(v, Tensor) else v
                                     for k, v in group.items()}})
        return {"sampler": self.name, "groups": groups}

    def load_state_dict(self, state: Optional[dict[str, Any]]) -> None:
        if not isinstance(state, dict) or state.get("sampler") != self.name:
            raise CheckpointError(f"GradSamp checkpoint holds no state of the {self.name!r} sampler; cannot "
                                  "resume it exactly (was it written by another sampler?)")
        try:
            groups = {}
            for g in state["groups"]:
                dtype = getattr(torch, g["dtype"])
                if not isinstance(dtype, torch.dtype):
                    raise TypeError(f"{g['dtype']!r} is not a dtype")
                layout = layout_for(tuple(g["names"]), tuple(torch.Size(s) for s in g["shapes"]), dtype)
                groups[layout] = dict(g["state"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"GradSamp {self.name!r} sampler state is malformed ({exc!r}); cannot resume") \
                from exc
        self._groups = groups


class Shrink(Tracked):
    """step_i ~ N(Delta_i, (c rho |Delta_i|)^2), rho = min(1, ||Delta_a|| / ||Delta_b||) per tensor over the
    last two trained epochs' steps: ``element`` with a spread that shrinks as training settles (dagrad's own)."""

    name = "shrink"

    def __init__(self, c: float = 0.5) -> None:
        super().__init__()
        self.c = float(c)  # valid range declared in the registry entry

    def _fold(self, layout: Layout, group: Group, delta: Tensor) -> None:
        group["before"] = group.get("latest")
        group["latest"] = tensor_sums(layout, [delta], 2)[0]

    def rho(self, layout: Layout, device: torch.device) -> Tensor:
        """Per tensor: how far the last trained step went relative to the one before, at most 1 (float64)."""
        group = self._group(layout, device)
        ones = torch.ones(len(layout.numels), dtype=torch.float64, device=device)
        if group is None or group.get("before") is None:
            return ones
        latest, before = group["latest"], group["before"]
        ratio = (latest / torch.where(before > 0, before, 1.0)).sqrt()
        return torch.where(before > 0, ratio, ones).clamp_max(1.0)

    def fit_flat(self, delta: Tensor, layout: Layout, moments: Moments | None = None) -> Fit:
        m = moments or Moments(delta, layout)
        rho = self.rho(layout, delta.device)
        return {"mu": m.mean, "sigma": self.c * rho * m.mean_abs, "rho": rho}

    def _draw(self, delta: Tensor, layout: Layout, fit: Fit, generator: torch.Generator, finish: bool) -> Tensor:
        z = torch.randn(delta.shape, generator=generator, dtype=delta.dtype, device=delta.device)
        zeros = torch.zeros(len(layout.numels), dtype=delta.dtype, device=delta.device)
        z = layout.affine_(z, (self.c * fit["rho"]).to(delta.dtype), zeros)
        return torch.addcmul(delta, delta.abs(), z)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "c": self.c}


class ExponentialAverage(Tracked):
    """step_i ~ N(m_i, (c s)^2): m the bias-corrected exponential moving average of the trained epochs'
    steps, s per tensor the RMS of Delta - m (dagrad's own; decay 0 is ``extrapolate``)."""

    name = "ema"

    def __init__(self, decay: float = 0.5, c: float = 1.0) -> None:
        super().__init__()
        self.decay, self.c = float(decay), float(c)  # valid ranges declared in the registry entry

    def _fold(self, layout: Layout, group: Group, delta: Tensor) -> None:
        mean = group.get("mean")
        if mean is None or mean.shape != delta.shape or mean.dtype != delta.dtype:
            group["mean"], group["count"] = delta.mul_(1.0 - self.decay), 1
        else:
            mean.mul_(self.decay).add_(delta, alpha=1.0 - self.decay)
            group["count"] = int(group["count"]) + 1

    def trend(self, delta: Tensor, layout: Layout) -> Tensor:
        """m: the averaged step (Delta itself while no trained step has been folded in)."""
        group = self._group(layout, delta.device)
        if group is None or group.get("mean") is None or group.get("mean").shape != delta.shape:
            return delta
        return group["mean"].to(delta.dtype) / (1.0 - self.decay ** int(group["count"]))

    def _estimate(self, delta: Tensor, layout: Layout) -> tuple[Tensor, Tensor]:
        trend = self.trend(delta, layout)
        if trend is delta:
            return trend, torch.zeros(len(layout.numels), dtype=torch.float64, device=delta.device)
        count = layout.counts(delta.device, torch.float64).clamp_min(1)
        spread = (tensor_sums(layout, [delta - trend], 2)[0] / count).sqrt()
        return trend, self.c * spread

    def fit_flat(self, delta: Tensor, layout: Layout, moments: Moments | None = None) -> Fit:
        trend, sigma = self._estimate(delta, layout)
        return {"mu": Moments(trend, layout).mean, "sigma": sigma}

    def draw_flat(self, delta: Tensor, layout: Layout, generator: torch.Generator, finish: bool = True,
                  moments: Moments | None = None) -> tuple[Tensor, Fit]:
        work = delta.to(compute_dtype(delta.dtype))
        trend, sigma = self._estimate(work, layout)
        z = torch.randn(work.shape, generator=generator, dtype=work.dtype, device=work.device)
        step = layout.affine_(z, sigma.to(work.dtype), torch.zeros_like(sigma, dtype=work.dtype)).add_(trend)
        reuse = moments is not None and trend is work and work is delta  # the caller's moments are Delta's
        mu = moments.mean if reuse else Moments(trend, layout).mean
        return step.to(delta.dtype), {"mu": mu, "sigma": sigma}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "decay": self.decay, "c": self.c}

