"""SWAD (Cha et al. 2021): dense weight averaging over the loss valley, for any algorithm.

- Dense averaging: `after_step` adds the module's parameters to an equal-weight running sum after every
  optimizer step. The iterates between two evaluations form a segment.
- At each evaluation `after_epoch` hands the segment and the online model's training-domain validation
  loss to the loss-valley rule (`loss_valley.py`) and starts a new segment. Segments waiting for a
  decision are kept on the CPU (at most n_tolerance of them).
- The averaged model is the equal-weight mean of every iterate of the accepted segments, i.e. the
  paper's (1 / (t_e - t_s)) * sum of theta_i. khanrc/swad instead averages segment means with equal
  weight; the two agree when segments have the same number of steps, as dagrad's epochs do, and differ
  only for GradSamp epochs (below), where weighting by iterates keeps a one-draw epoch from weighing as
  much as a trained one.
- Floating-point parameters are averaged; buffers (BatchNorm statistics, counters) are copied from the
  end of the latest accepted segment (evaluation does not change them). BatchNorm statistics are not
  recomputed for the averaged weights (SWAD's defaults freeze BN, so they never change there).
- No valley by the end of training (loss still falling): `finalize` returns the last segment's average,
  as khanrc/swad does, and `stats()["fallback"]` says so. Iterates after the last evaluation are unused.

GradSamp: a sampled epoch has no optimizer step, so the engine calls `after_step(module)` once after
writing theta_t: the draw is that epoch's segment, one iterate, weighted 1 against steps_per_epoch for a
trained epoch. A "skip" sample (or a rejected draw that keeps theta_{t-1}) thus adds theta_{t-1} once
more. If the engine does not call it, `after_epoch` does the same for any segment that is still empty.
The segment's loss is the loss of the epoch, whatever its kind ("train", "sampled", "rejected").
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from dagrad.averaging.loss_valley import AVERAGING, CONVERGING, LossValley

State = dict[str, Tensor]

#: what an epoch did (the engine's record kinds)
EPOCH_KINDS = ("train", "sampled", "rejected")


@dataclass
class Segment:
    """A finished segment on the CPU: the sum of its iterates' parameters, their count, the buffers at
    its end, its validation loss and the epoch kind."""

    total: State
    count: int
    buffers: dict
    loss: float
    kind: str

    def as_dict(self) -> dict:
        return {"total": self.total, "count": self.count, "buffers": self.buffers, "loss": self.loss, "kind": self.kind}


def _accumulator_dtype(t: Tensor) -> torch.dtype:
    return torch.promote_types(t.dtype, torch.float32)


def _cpu(state: dict) -> dict:
    return {k: v.detach().to("cpu", copy=True) if torch.is_tensor(v) else copy.deepcopy(v) for k, v in state.items()}


def _optimizers_of(module: nn.Module) -> list:
    found = [v for v in vars(module).values() if isinstance(v, torch.optim.Optimizer)]
    if callable(getattr(module, "optimizers", None)):
        found += list(module.optimizers().values())
    return found


class SWAD:
    """The `swad` averager (see the module docstring); the engine drives it through the Averager protocol."""

    def __init__(self, module: nn.Module, n_converge: int = 3, n_tolerance: int = 6,
                 tolerance_ratio: float = 0.3, early_stop: bool = True):
        self.valley = LossValley(n_converge, n_tolerance, tolerance_ratio)
        self.early_stop = bool(early_stop)
        self._module = module
        self._names = [n for n, p in module.named_parameters(remove_duplicate=False) if p.is_floating_point()]
        self._running: Optional[State] = None  # on the parameters' device
        self._running_count = 0
        self._segments: dict[int, Segment] = {}
        self._total: Optional[State] = None  # accepted iterates, summed, on the CPU
        self._count = 0
        self._buffers: Optional[dict] = None
        self._fallback = False

    # --- the Averager protocol -------------------------------------------------------------------
    def after_step(self, module: nn.Module) -> None:
        if self.valley.state not in (CONVERGING, AVERAGING) or self.valley.finished:
            return
        params = dict(module.named_parameters(remove_duplicate=False))
        with torch.no_grad():
            if self._running is None:
                self._running = {
                    n: torch.zeros_like(params[n], dtype=_accumulator_dtype(params[n])) for n in self._names
                }
            for n in self._names:
                self._running[n].add_(params[n].detach())
        self._running_count += 1

    def after_epoch(self, module: nn.Module, val_loss: float, kind: str) -> None:
        if self.valley.finished:
            raise RuntimeError("SWAD.after_epoch: called after finalize()")
        if kind not in EPOCH_KINDS:
            raise ValueError(f"SWAD.after_epoch: kind must be one of {', '.join(EPOCH_KINDS)}, got {kind!r}")
        if self.valley.state != CONVERGING and self.valley.state != AVERAGING:
            self.valley.observe(val_loss)
            self._reset_running()
            return
        if self._running_count == 0:
            self.after_step(module)
        names = set(self._names)
        buffers = _cpu({k: v for k, v in module.state_dict().items() if k not in names})
        index = len(self.valley.losses)
        self._segments[index] = Segment(_cpu(self._running), self._running_count, buffers, float(val_loss), kind)
        self._reset_running()
        self._accept(self.valley.observe(val_loss))

    def should_stop(self) -> bool:
        return self.early_stop and self.valley.state not in (CONVERGING, AVERAGING) and not self.valley.finished

    def averaged_module(self) -> Optional[nn.Module]:
        """A new copy of the module (same class, eval mode, no optimizers) holding the averaged weights."""
        if self._count == 0:
            return None
        return self._materialise({n: t / self._count for n, t in self._total.items()}, self._buffers)

    def finalize(self) -> Optional[nn.Module]:
        if not self.valley.finished:
            self._accept(self.valley.finish())
            if self._count == 0 and self._segments:
                last = self._segments[max(self._segments)]
                self._accept_segment(last)
                self._fallback = True
            self._segments.clear()
        return self.averaged_module()

    def stats(self) -> dict:
        v = self.valley
        return {
            "name": "swad", "state": v.state, "finished": v.finished, "n_averaged": self._count,
            "segments_averaged": len(v.accepted) + int(self._fallback), "segments_seen": len(v.losses),
            "start": v.start, "end": v.end, "threshold": v.threshold, "queued": len(self._segments),
            "fallback": "last_segment" if self._fallback else None,
        }

    def state_dict(self) -> dict:
        return {
            "valley": self.valley.state_dict(), "early_stop": self.early_stop,
            "running": None if self._running is None else _cpu(self._running), "running_count": self._running_count,
            "segments": {i: s.as_dict() for i, s in self._segments.items()},
            "total": self._total, "count": self._count, "buffers": self._buffers, "fallback": self._fallback,
        }

    def load_state_dict(self, d: dict) -> None:
        self.valley.load_state_dict(d["valley"])
        self.early_stop = d["early_stop"]
        params = dict(self._module.named_parameters(remove_duplicate=False))
        self._running = None if d["running"] is None else {
            n: t.to(params[n].device, copy=True) for n, t in d["running"].items()
        }
        self._running_count = d["running_count"]
        self._segments = {int(i): Segment(**s) for i, s in d["segments"].items()}
        self._total = None if d["total"] is None else _cpu(d["total"])
        self._count, self._buffers, self._fallback = d["count"], d["buffers"], d["fallback"]

    # --- internals -------------------------------------------------------------------------------
    def _reset_running(self) -> None:
        if self._running is not None:
            for t in self._running.values():
                t.zero_()
        self._running_count = 0

    def _accept(self, indices: list[int]) -> None:
        for i in indices:
            self._accept_segment(self._segments[i])
        for i in [i for i in self._segments if i not in self.valley.pending]:
            del self._segments[i]

    def _accept_segment(self, seg: Segment) -> None:
        if self._total is None:
            self._total = {n: t.clone() for n, t in seg.total.items()}
        else:
            for n, t in seg.total.items():
                self._total[n].add_(t)
        self._count += seg.count
        self._buffers = seg.buffers

    def _materialise(self, params: State, buffers: dict) -> nn.Module:
        memo = {id(opt): None for opt in _optimizers_of(self._module)}
        averaged = copy.deepcopy(self._module, memo)
        averaged.load_state_dict({**buffers, **params})
        return averaged.eval()
