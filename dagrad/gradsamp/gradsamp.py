"""GradSamp orchestrator: the one object the engine talks to about sampled epochs.

Per epoch the engine asks ``wants_sample(epoch)``; if yes it calls ``sample`` instead of training, which
writes theta_t = theta_{t-1} + scale * step into every trainable parameter (or rejects the draw and writes
nothing), and after every epoch, whatever happened, it calls ``observe`` so the history and counters move
on. Randomness comes from a private generator seeded from (run seed, epoch): every resumed run and every
DDP rank draws the same theta_t. Tensors are visited in sorted-name order so the draw order is fixed.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor, nn

from dagrad.errors import CheckpointError
from dagrad.gradsamp import guard as guard_lib
from dagrad.gradsamp.history import History, floating_buffers, trainable
from dagrad.gradsamp.samplers import Sampler
from dagrad.gradsamp.settings import Settings, read_settings
from dagrad.seeding import generator as seeded_generator, seed_hash


@dataclass
class SampleOutcome:
    """What ``sample`` did. kind: 'sampled' or 'rejected'; fallback (if rejected): 'train' or 'keep'."""

    kind: str
    fallback: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)


class GradSamp:
    """Schedules, draws, guards and records GradSamp epochs for one run (see the module docstring)."""

    def __init__(self, cfg: Any, run_seed: int, guard_batch: tuple[Tensor, Tensor] | None = None) -> None:
        self.settings: Settings = read_settings(cfg, run_seed)
        self.sampler: Sampler = self.settings.sampler
        self.schedule = self.settings.schedule
        self.run_seed = int(run_seed)
        self.guard_batch = guard_batch
        self.history = History()
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
        params = trainable(module)
        deltas, buffer_deltas = self.history.deltas()
        missing = sorted(set(params) - set(deltas))
        if missing:
            raise RuntimeError(f"GradSamp: parameters {missing[:5]} are not in the history; push every epoch")
        stats: dict[str, Any] = {
            "sampler": self.sampler.name, **{f"sampler_{k}": v for k, v in self.sampler.describe().items() if k != "name"},
            "scale": s.scale, "epoch": int(epoch), "seed": self.draw_seed(epoch),
            "buffers": s.buffers, "optimizer_state": s.optimizer_state,
        }
        gen = seeded_generator("dagrad.gradsamp.draw", self.run_seed, int(epoch))
        proposals, bad = self._propose(params, deltas, gen, stats)
        if s.buffers == "extrapolate" and bad is None:
            buffer_props, bad = _extrapolate_buffers(floating_buffers(module), buffer_deltas)
            proposals.update(buffer_props)
            stats["buffers_changed"] = len(buffer_props)
        if bad is not None:
            stats["reason"] = f"non-finite proposal in {bad}"
            self._last_fallback = "train"
            return SampleOutcome("rejected", "train", _clean(stats))
        targets = {**params, **floating_buffers(module)}
        verdict = self._write_guarded(module, targets, proposals, predict, meter, stats)
        if verdict is not None:
            stats["reason"] = verdict
            self._last_fallback = s.guard_fallback
            return SampleOutcome("rejected", s.guard_fallback, _clean(stats))
        if s.optimizer_state == "reset":
            for opt in optimizers.values():
                opt.state.clear()
        self._last_fallback = None
        return SampleOutcome("sampled", None, _clean(stats))

    def _propose(
        self, params: dict[str, nn.Parameter], deltas: dict[str, Tensor], gen: torch.Generator, stats: dict[str, Any]
    ) -> tuple[dict[str, Tensor], str | None]:
        """Draw every parameter's proposal theta_{t-1} + scale * step (nothing written); name of a non-finite one."""
        proposals: dict[str, Tensor] = {}
        mus, sigmas, betas = [], [], []
        abs_step = sq_step = sq_delta = 0.0
        elements = 0
        for name, p in params.items():
            delta = deltas[name]
            if delta.shape != p.shape:
                raise RuntimeError(f"GradSamp: {name} has shape {tuple(p.shape)} but its history {tuple(delta.shape)}")
            step, fit = self.sampler.draw_fitted(delta, gen)
            step = self.settings.scale * step.to(torch.float64)
            proposal = (p.detach().to("cpu", torch.float64) + step).to(p.dtype)
            mus.append(fit["mu"]), sigmas.append(fit["sigma"])
            if "beta" in fit:
                betas.append(fit["beta"])
            if not bool(torch.isfinite(proposal).all()):
                stats.update(tensors=len(proposals), elements=elements)
                return proposals, name
            abs_step += float(step.abs().sum())
            sq_step += float(step.pow(2).sum())
            sq_delta += float(delta.to(torch.float64).pow(2).sum())
            elements += p.numel()
            proposals[name] = proposal.to(p.device)
        stats.update(
            tensors=len(proposals), elements=elements, mean_abs_step=abs_step / max(elements, 1),
            step_norm=math.sqrt(sq_step), delta_norm=math.sqrt(sq_delta),
            mean_mu=_mean(mus), mean_sigma=_mean(sigmas),
        )
        if betas:
            stats.update(mean_beta=_mean(betas), min_beta=min(betas), max_beta=max(betas))
        return proposals, None

    def _write_guarded(
        self, module: nn.Module, targets: dict[str, Tensor], proposals: dict[str, Tensor],
        predict: Callable[[Tensor], Tensor] | None, meter: Any, stats: dict[str, Any],
    ) -> str | None:
        """Write the proposals; with the guard on, check the loss and restore exactly if it rose. Reason or None."""
        s = self.settings
        if not s.guard:
            stats["guard"] = "off"
            _write(targets, proposals)
            return None
        if predict is None or self.guard_batch is None:
            stats["guard"] = "skipped: no predict function or guard batch"
            _write(targets, proposals)
            return None
        device = next(iter(targets.values())).device if targets else torch.device("cpu")
        backup = {name: targets[name].detach().clone() for name in proposals}
        window = meter.window("guard") if meter is not None else contextlib.nullcontext()
        with window as reading, guard_lib.eval_mode(module):
            before = guard_lib.batch_loss(predict, self.guard_batch, device)
            _write(targets, proposals)
            after = guard_lib.batch_loss(predict, self.guard_batch, device)
        if meter is not None:
            stats["guard_energy"] = reading.to_dict()
        stats.update(guard_loss_before=before, guard_loss_after=after, guard_tolerance=s.guard_tolerance)
        if guard_lib.rejects(before, after, s.guard_tolerance):
            _write(targets, backup)
            stats["guard"] = "rejected"
            return f"guard: loss {after:.6g} > {before:.6g} * (1 + {s.guard_tolerance:g})"
        stats["guard"] = "accepted"
        return None

    # ---- bookkeeping -----------------------------------------------------------------------------
    def observe(self, module: nn.Module, kind: str, fallback: str | None = None) -> None:
        """Record the end of an epoch of ``kind`` ('train', 'sampled', 'rejected').

        For 'rejected', ``fallback`` says what the epoch did instead ('train': a real epoch ran, counted as
        real; 'keep': theta_{t-1} kept, nothing pushed); it defaults to the last rejected outcome's fallback.
        """
        if kind == "rejected":
            fallback = fallback or self._last_fallback
            if fallback not in ("train", "keep"):
                raise ValueError("GradSamp.observe: a 'rejected' epoch needs fallback 'train' or 'keep'")
            kind = "train" if fallback == "train" else "kept"
        elif kind not in ("train", "sampled"):
            raise ValueError(f"GradSamp.observe: kind must be 'train', 'sampled' or 'rejected', got {kind!r}")
        self.history.push(module, kind)
        self._last_fallback = None

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to decide and draw exactly as this one would have."""
        return {"version": 1, "history": self.history.state_dict(), "last_fallback": self._last_fallback,
                "sampler": self.sampler.describe(), "schedule": self.schedule.describe()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or state.get("version") != 1 or "history" not in state:
            raise CheckpointError("GradSamp state in the checkpoint is missing or of an unknown version")
        self.history.load_state_dict(state["history"])
        self._last_fallback = state.get("last_fallback")


def _extrapolate_buffers(
    buffers: dict[str, Tensor], deltas: dict[str, Tensor]
) -> tuple[dict[str, Tensor], str | None]:
    """Floating buffers + their Delta. A buffer that was >= 0 in both states (e.g. running_var) stays >= 0."""
    out: dict[str, Tensor] = {}
    for name, b in buffers.items():
        if name not in deltas or deltas[name].shape != b.shape:
            continue  # a buffer without matching history is kept as it is
        proposal = b.detach().cpu() + deltas[name].to(b.dtype)
        if bool((b.detach() >= 0).all()) and bool(((b.detach().cpu() - deltas[name].to(b.dtype)) >= 0).all()):
            proposal = proposal.clamp_min(0)
        if not bool(torch.isfinite(proposal).all()):
            return out, name
        out[name] = proposal.to(b.device)
    return out, None


def _write(targets: dict[str, Tensor], values: dict[str, Tensor]) -> None:
    with torch.no_grad():
        for name, value in values.items():
            targets[name].copy_(value)


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def _clean(stats: dict[str, Any]) -> dict[str, Any]:
    """Stats safe for strict JSON: non-finite floats become None, tensors become Python numbers."""
    out: dict[str, Any] = {}
    for k, v in stats.items():
        if isinstance(v, Tensor):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        out[k] = v
    return out
