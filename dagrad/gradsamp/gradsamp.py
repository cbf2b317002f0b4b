"""GradSamp orchestrator: the one object the engine talks to about sampled epochs.

Per epoch the engine asks ``wants_sample(epoch)``; if yes it calls ``sample`` instead of training, which
writes theta_t = theta_{t-1} + scale * step into every trainable parameter (or rejects the draw and writes
nothing), and after every epoch, whatever happened, it calls ``observe`` so the history and counters move
on. Randomness comes from a private generator on the parameters' device, seeded from (run seed, epoch):
every resumed run and every DDP rank draws the same theta_t. Tensors are visited in sorted-name order so
the draw order is fixed.

A sampled epoch runs where the parameters live: Delta, the draw, the finiteness check and the statistics
are device kernels over flat groups of tensors, and everything the host needs (is the draw finite? the
record's statistics) is read back in one transfer, the epoch's one host sync (two with the guard on).
``observe`` copies into the history's older store without a sync.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor, nn

from dagrad.run.epochs import EpochKind, EpochOutcome
from dagrad.utils.errors import CheckpointError
from dagrad.gradsamp import guard as guard_lib
from dagrad.gradsamp.history import History, Layout, floating_buffers, layout_for, trainable
from dagrad.gradsamp.samplers import Moments, Sampler, tensor_sums, total
from dagrad.gradsamp.settings import Settings
from dagrad.utils.plain import plain
from dagrad.utils.seeding import seed_hash

VERSION = 2
"""State version: 2 holds CPU tensors and plain data only (loads with weights_only=True); 1 also loads."""


@dataclass
class SampleOutcome:
    """What ``sample`` did. kind: 'sampled', 'skipped' (a sampler that does not move θ: the skip control) or
    'rejected'; fallback (if rejected): 'train' or 'keep'."""

    kind: str
    fallback: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Piece:
    """One flat group of a proposal: the tensors it overwrites, their layout, the new and (guard) old values."""

    layout: Layout
    targets: list[Tensor]
    values: Tensor
    backup: Tensor | None


class _Tally:
    """Device scalars gathered while drawing, read to the host in one transfer: the draw's one host sync."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.values: list[Tensor] = []

    def add(self, key: str, value: Tensor) -> None:
        self.keys.append(key)
        self.values.append(value.detach().reshape(()).to(torch.float64))

    def read(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        numbers = torch.stack([v.to(self.values[0].device) for v in self.values]).tolist() if self.values else []
        for key, number in zip(self.keys, numbers):
            out.setdefault(key, []).append(number)
        return out


class GradSamp:
    """Schedules, draws, guards and records GradSamp epochs for one run (see the module docstring)."""

    def __init__(self, settings: Settings, run_seed: int, guard_batch: tuple[Tensor, Tensor] | None = None) -> None:
        self.settings = settings  # resolved once (dagrad.gradsamp.settings); nothing is checked again here
        self.sampler: Sampler = settings.build_sampler()
        self.schedule = settings.build_schedule(run_seed)
        self.run_seed = int(run_seed)
        self.guard_batch = guard_batch
        self.history = History(self.settings.history_device)
        self._last_fallback: str | None = None

    # ---- decisions -------------------------------------------------------------------------------
    def wants_sample(self, epoch: int) -> bool:
        """True if ``epoch`` is to be sampled: the schedule picks it and two epoch-end states exist."""
        h = self.history
        return h.ready and self.schedule.decide(epoch, h.real_epochs, h.consecutive_sampled)

    def draw_seed(self, epoch: int) -> int:
        """The seed of epoch ``epoch``'s draw, a stable hash of (run seed, epoch)."""
        return seed_hash("dagrad.gradsamp.draw", self.run_seed, int(epoch))

    # ---- the draw --------------------------------------------------------------------------------
    def sample(
        self,
        module: nn.Module,
        optimizers: dict[str, torch.optim.Optimizer],
        epoch: int,
        predict: Callable[[Tensor], Tensor] | None = None,
        meter: Any = None,
    ) -> SampleOutcome:
        """Replace epoch ``epoch`` by a draw written into ``module``; reject (writing nothing) if unusable."""
        s = self.settings
        stats: dict[str, Any] = {
            "sampler": self.sampler.name, **{f"sampler_{k}": v for k, v in self.sampler.describe().items() if k != "name"},
            "scale": self.sampler.scale, "epoch": int(epoch), "seed": self.draw_seed(epoch),
            "buffers": s.buffers, "optimizer_state": s.optimizer_state,
        }
        self.history.place(module)
        pieces, tally = self._propose(module, epoch, stats, finish=False)
        numbers = tally.read()  # the one host sync: finiteness and every statistic at once
        if any(numbers.get("leftover", [])):  # about never: ggd left gamma variates to finish; same seed again
            pieces, tally = self._propose(module, epoch, stats, finish=True)
            numbers = tally.read()
        _summarise(numbers, stats)
        if not all(flag == 1.0 for flag in numbers.get("finite", [])):
            stats["reason"] = f"non-finite proposal in {_first_non_finite(pieces)}"
            self._last_fallback = "train"
            return SampleOutcome("rejected", "train", plain(stats))
        if s.guard and predict is not None and self.guard_batch is not None:
            device = next((p.device for p in trainable(module).values()), torch.device("cpu"))
            verdict = guard_lib.guarded(module, predict, self.guard_batch, device, lambda: _write(pieces, "values"),
                                        lambda: _write(pieces, "backup"), s.guard_tolerance, meter, stats)
        else:
            stats["guard"] = "skipped: no predict function or guard batch" if s.guard else "off"
            _write(pieces, "values")
            verdict = None
        if verdict is not None:
            stats["reason"] = verdict
            self._last_fallback = s.guard_fallback
            return SampleOutcome("rejected", s.guard_fallback, plain(stats))
        if s.optimizer_state == "reset" and self.sampler.moves:  # the skip control changes nothing at all
            for opt in optimizers.values():
                opt.state.clear()
        self._last_fallback = None
        return SampleOutcome("sampled" if self.sampler.moves else "skipped", None, plain(stats))

    def _propose(self, module: nn.Module, epoch: int, stats: dict[str, Any], finish: bool
                 ) -> tuple[list[_Piece], _Tally]:
        """Every proposal (nothing written) and the device scalars describing it; ``finish``: see draw_flat."""
        s, params, scale = self.settings, trainable(module), self.sampler.scale
        parts = self.history.delta_parts("params")
        held = {n: shape for layout, _, _ in parts for n, shape in zip(layout.names, layout.shapes)}
        missing = sorted(set(params) - set(held))
        if missing:
            raise RuntimeError(f"GradSamp: parameters {missing[:5]} are not in the history; push every epoch")
        for name, p in params.items():
            if held[name] != p.shape:
                raise RuntimeError(f"GradSamp: {name} has shape {tuple(p.shape)} but its history {tuple(held[name])}")
        tally, pieces, generators = _Tally(), [], {}
        seed, tensors, elements = self.draw_seed(epoch), 0, 0
        for layout, home, delta in parts:
            layout, delta = _select(layout, delta, params)
            targets = [params[n] for n in layout.names]
            tensors, elements = tensors + len(targets), elements + layout.total
            moments = Moments(delta, layout)
            tally.add("sq_delta", moments.square_sum.sum())
            if not self.sampler.moves:
                continue  # skip: theta_t = theta_{t-1} exactly, nothing drawn or written
            if home not in generators:
                generators[home] = torch.Generator(device=home).manual_seed(seed)
            step, fit = self.sampler.draw_flat(delta, layout, generators[home], finish, moments)
            tally.add("abs_step", total(step, 1) * abs(scale))
            tally.add("sq_step", total(step, 2) * (scale * scale))
            theta = layout.flatten(targets) if s.guard else None  # what the guard would restore
            values = _plus_theta(step.clone() if step is delta else step, scale, targets)
            tally.add("finite", _finite(values))
            for key, vector in fit.items():  # mu, sigma, beta per tensor; ggd's leftover count
                tally.add(key, vector.sum())
                if key == "beta" and layout.numels:
                    tally.add("beta_min", vector.min())
                    tally.add("beta_max", vector.max())
            pieces.append(_Piece(layout, targets, values, theta))
        stats.update(tensors=tensors, elements=elements,
                     device=", ".join(sorted({str(home) for _, home, _ in parts})) or "cpu")
        if s.buffers == "extrapolate" and self.sampler.moves:  # the skip control leaves buffers as they are
            buffers, changed = floating_buffers(module), 0
            for layout, home, delta in self.history.delta_parts("buffers"):
                layout, delta = _select(layout, delta, buffers)
                if not layout.names:
                    continue
                targets = [buffers[n] for n in layout.names]
                current = layout.flatten(targets)
                values = current + delta
                # a buffer >= 0 in both states (e.g. running_var) stays >= 0
                low = torch.minimum(current, current - delta)
                negatives = tensor_sums(layout, [(low < 0).to(current.dtype)], 1)[0]
                values = torch.where(layout.expand(negatives == 0), values.clamp_min(0), values)
                tally.add("finite", _finite(values))
                pieces.append(_Piece(layout, targets, values, current if s.guard else None))
                changed += len(layout.names)
            stats["buffers_changed"] = changed
        return pieces, tally

    # ---- bookkeeping -----------------------------------------------------------------------------
    def observe(self, module: nn.Module, kind: EpochKind | str, fallback: str | None = None) -> None:
        """Record the end of an epoch of ``kind`` (an EpochKind: train, sampled, rejected).

        For a rejected epoch, ``fallback`` says what it did instead ('train': a real epoch ran, counted as
        real; 'keep': theta_{t-1} kept, nothing pushed); it defaults to the last rejected outcome's fallback.
        """
        kind = EpochKind(kind)
        if kind is EpochKind.REJECTED:
            fallback = fallback or self._last_fallback
        outcome = EpochOutcome(kind, fallback)
        self.history.push(module, outcome)
        self.sampler.observe(self.history, outcome)  # a sampler with memory (variants.py) folds the step in
        self._last_fallback = None

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to decide and draw exactly as this one would have (CPU tensors)."""
        state = {"version": VERSION, "history": self.history.state_dict(), "last_fallback": self._last_fallback,
                 "sampler": self.sampler.describe(), "schedule": self.schedule.describe()}
        sampler_state = self.sampler.state_dict()
        if sampler_state is not None:
            state["sampler_state"] = sampler_state
        return state

    def load_state_dict(self, state: dict[str, Any], module: nn.Module | None = None) -> None:
        """Restore ``state_dict()``; the history goes next to ``module``'s tensors now, or at the next use."""
        if not isinstance(state, dict) or state.get("version") not in (1, VERSION) or "history" not in state:
            raise CheckpointError("GradSamp state in the checkpoint is missing or of an unknown version")
        self.history.load_state_dict(state["history"], module)
        if "sampler_state" in state or self.sampler.state_dict() is not None:
            self.sampler.load_state_dict(state.get("sampler_state"))
        self._last_fallback = state.get("last_fallback")


def _select(layout: Layout, flat: Tensor, tensors: dict[str, Tensor]) -> tuple[Layout, Tensor]:
    """The part of a flat history store whose tensors are still in ``tensors`` with the same shape."""
    keep = [i for i, (n, shape) in enumerate(zip(layout.names, layout.shapes))
            if n in tensors and tensors[n].shape == shape]
    if len(keep) == len(layout.names):
        return layout, flat
    views = layout.split(flat)
    sub = layout_for(tuple(layout.names[i] for i in keep), tuple(layout.shapes[i] for i in keep), layout.dtype)
    return sub, torch.cat([views[i] for i in keep]) if keep else flat[:0]


def _finite(flat: Tensor) -> Tensor:
    """True (a device bool) if every value is finite: min and max in one read, no mask of the whole tensor."""
    if flat.numel() == 0:
        return torch.ones((), dtype=torch.bool, device=flat.device)
    return torch.isfinite(torch.stack(torch.aminmax(flat))).all()


def _plus_theta(step: Tensor, scale: float, targets: list[Tensor]) -> Tensor:
    """theta_{t-1} + scale * step, computed in ``step`` itself from the targets (no flat copy of theta).

    A scale beyond the dtype's range is applied in float64 (and overflows to inf, so the draw is rejected).
    """
    if abs(scale) > torch.finfo(step.dtype).max:
        step.copy_(step.to(torch.float64) * scale)
    elif scale != 1.0:
        step.mul_(scale)
    with torch.no_grad():
        torch._foreach_add_(torch._C._nn.unflatten_dense_tensors(step, targets), targets)
    return step


def _summarise(numbers: dict[str, list[float]], stats: dict[str, Any]) -> None:
    """The record's statistics from the tallied device scalars (read back in one transfer)."""
    total = lambda key: math.fsum(numbers.get(key, []))  # noqa: E731
    tensors, elements = stats["tensors"], stats["elements"]
    stats.update(mean_abs_step=total("abs_step") / max(elements, 1), step_norm=math.sqrt(total("sq_step")),
                 delta_norm=math.sqrt(total("sq_delta")), mean_mu=total("mu") / max(tensors, 1),
                 mean_sigma=total("sigma") / max(tensors, 1))
    if "beta" in numbers:
        stats.update(mean_beta=total("beta") / max(tensors, 1), min_beta=min(numbers.get("beta_min", [2.0])),
                     max_beta=max(numbers.get("beta_max", [2.0])))
    for key in sorted(set(numbers) - _TALLIED):  # a sampler's own per-tensor figures (shrink's rho)
        stats[f"mean_{key}"] = total(key) / max(tensors, 1)


_TALLIED = {"sq_delta", "abs_step", "sq_step", "finite", "mu", "sigma", "beta", "beta_min", "beta_max", "leftover"}


def _first_non_finite(pieces: list[_Piece]) -> str:
    """Name of the first tensor whose proposal is not finite (the rare path: one sync per tensor checked)."""
    for piece in pieces:
        for name, view in zip(piece.layout.names, piece.layout.split(piece.values)):
            if not bool(torch.isfinite(view).all()):
                return name
    return "an unnamed tensor"


def _write(pieces: list[_Piece], source: str) -> None:
    """Copy each piece's ``source`` ('values' or 'backup') into its target tensors."""
    with torch.no_grad():
        for piece in pieces:
            # views shaped like the targets, made in one C++ call (a Python loop of .view costs ~10 us each)
            views = torch._C._nn.unflatten_dense_tensors(getattr(piece, source), piece.targets)
            torch._foreach_copy_(piece.targets, views)
