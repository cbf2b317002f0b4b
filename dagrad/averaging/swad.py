"""SWAD (Cha et al. 2021): dense weight averaging over the loss valley, for any algorithm.

- Dense averaging: `after_step` adds the module's parameters to an equal-weight running sum after every
  optimizer step. The iterates between two evaluations form a segment.
- At each evaluation `after_epoch` hands the segment and the online model's training-domain validation
  loss to the loss-valley rule (`loss_valley.py`) and starts a new segment. Segments the rule may still
  add are kept on the CPU (at most max(n_converge, n_tolerance) of them, as khanrc/swad's two queues).
- rule "khanrc" (default), as khanrc/swad: the average is the equal-weight mean of *segment means*, one
  term per addition, so a segment added twice counts twice and every segment weighs the same whatever
  its number of iterates. Before anything is added, the convergence segment's mean is the average.
  Buffers (BatchNorm statistics, counters) are those at the *start* of the convergence segment (the
  module as it was at the evaluation before it), since khanrc's averaged model copies them from there
  and averaging never touches them.
- rule "paper": the equal-weight mean of every iterate of the accepted segments, i.e. the paper's
  (1 / (t_e - t_s)) * sum of theta_i; buffers from the end of the latest accepted segment. The two
  weightings agree for equal-length segments; for GradSamp epochs (below) weighting by iterates keeps a
  one-draw epoch from weighing as much as a trained one.
- No valley by the end of training (loss still falling): `finalize` returns the last segment's mean, as
  khanrc/swad does, and `stats()["fallback"]` says so. Iterates after the last evaluation are unused.
- BatchNorm that is not frozen: `finalize(batches)` recomputes its statistics for the averaged weights
  over `update_bn_steps` training batches (khanrc/swad: 500 when `freeze_bn` is false; see update_bn.py).

GradSamp: a sampled epoch has no optimizer step, so the engine calls `after_step(module)` once after
writing theta_t: the draw is that epoch's segment, one iterate. A "skip" sample (or a rejected draw that
keeps theta_{t-1}) thus adds theta_{t-1} once more. If the engine does not call it, `after_epoch` does the
same for any segment that is still empty. The segment's loss is the loss of the epoch, whatever its kind.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import torch
from torch import Tensor, nn

from dagrad.averaging.loss_valley import AVERAGING, CONVERGING, VALLEY_OPTIONS, LossValley
from dagrad.averaging.update_bn import update_bn
from dagrad.run.epochs import EpochKind
from dagrad.registry import Option

State = dict[str, Tensor]



@dataclass
class Segment:
    """A finished segment on the CPU: the sum of its iterates' parameters, their count, its buffers (at
    its start for rule "khanrc", at its end for "paper"), its validation loss and the epoch kind."""

    total: State
    count: int
    buffers: dict
    loss: float
    kind: str

    def as_dict(self) -> dict:
        return {"total": self.total, "count": self.count, "buffers": self.buffers, "loss": self.loss,
                "kind": str(self.kind)}  # an EpochKind is stored as its plain value (weights_only checkpoints)


def _accumulator_dtype(t: Tensor) -> torch.dtype:
    return torch.promote_types(t.dtype, torch.float32)


def _cpu(state: Optional[dict]) -> Optional[dict]:
    if state is None:
        return None
    return {k: v.detach().to("cpu", copy=True) if torch.is_tensor(v) else copy.deepcopy(v) for k, v in state.items()}


def _optimizers_of(module: nn.Module) -> list:
    found = [v for v in vars(module).values() if isinstance(v, torch.optim.Optimizer)]
    if callable(getattr(module, "optimizers", None)):
        found += list(module.optimizers().values())
    return found


SWAD_OPTIONS = {
    **VALLEY_OPTIONS,
    "early_stop": Option(True, bool, "stop training when the valley ends"),
    "update_bn_steps": Option(500, int, "steps of BatchNorm re-estimation for the average when BN is not frozen",
                              low=0),
}


class SWAD:
    """The `swad` averager (see the module docstring); the engine drives it through the Averager protocol."""

    def __init__(self, module: nn.Module, n_converge: int = 3, n_tolerance: int = 6,
                 tolerance_ratio: float = 0.3, early_stop: bool = True, rule: str = "khanrc",
                 update_bn_steps: int = 500):
        self.valley = LossValley(n_converge, n_tolerance, tolerance_ratio, rule)
        self.early_stop = bool(early_stop)
        self.update_bn_steps = update_bn_steps
        self._khanrc = rule == "khanrc"
        self._module = module
        self._names = [n for n, p in module.named_parameters(remove_duplicate=False) if p.is_floating_point()]
        self._running: Optional[State] = None  # on the parameters' device
        self._running_count = 0
        self._segments: dict[int, Segment] = {}
        self._total: Optional[State] = None  # what was added, summed, on the CPU
        self._count = 0  # the divisor: segments added (khanrc) or iterates added (paper)
        self._iterates = 0  # iterates behind the average, with multiplicity
        self._additions = 0  # segments added, with multiplicity
        self._buffers: Optional[dict] = None  # the buffers the averaged model gets
        self._start: Optional[Segment] = None  # khanrc: the convergence segment, the average until an addition
        self._last_buffers = self._buffers_of(module) if self._khanrc else None  # at the last evaluation
        self._fallback: Optional[str] = None
        self._bn_steps = 0

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
        kind = str(EpochKind(kind))  # the engine's vocabulary; anything else is a ValueError
        if self.valley.state != CONVERGING and self.valley.state != AVERAGING:
            self.valley.observe(val_loss)
            self._reset_running()
            return
        if self._running_count == 0:
            self.after_step(module)
        end_buffers = self._buffers_of(module)
        index = len(self.valley.losses)
        buffers = self._last_buffers if self._khanrc else end_buffers
        self._segments[index] = Segment(_cpu(self._running), self._running_count, buffers, float(val_loss), kind)
        if self._khanrc:
            self._last_buffers = end_buffers
        self._reset_running()
        joined = self.valley.observe(val_loss)
        if self._khanrc and self.valley.start is not None and self._buffers is None:  # converged just now
            self._start = self._segments[self.valley.start]
            self._buffers = self._start.buffers
        self._accept(joined)

    def should_stop(self) -> bool:
        return self.early_stop and self.valley.state not in (CONVERGING, AVERAGING) and not self.valley.finished

    def averaged_module(self) -> Optional[nn.Module]:
        """A new copy of the module (same class, eval mode, no optimizers) holding the averaged weights."""
        if self._count:
            params = {n: t / self._count for n, t in self._total.items()}
        elif self._start is not None:
            params = {n: t / self._start.count for n, t in self._start.total.items()}
        else:
            return None
        return self._materialise(params, self._buffers)

    def finalize(self, batches: Optional[Iterable[Sequence[Tensor]]] = None,
                 steps: Optional[int] = None) -> Optional[nn.Module]:
        """Settle what is queued and return the final averaged model. Given training `batches` (lists of
        per-environment inputs), first recompute the statistics of BatchNorm layers that are not frozen
        over `steps` of them (default `update_bn_steps`), once."""
        if not self.valley.finished:
            last = self._segments[max(self._segments)] if self._segments else None
            self._accept(self.valley.finish())
            if self._count == 0 and self._start is not None:  # khanrc: converged, nothing added
                self._add(self._start)
                self._fallback = "start_segment"
            elif self._count == 0 and last is not None:
                self._add(last)
                self._buffers = last.buffers
                self._fallback = "last_segment"
            self._segments.clear()
        model = self.averaged_module()
        if model is not None and batches is not None and not self._bn_steps:
            self._bn_steps = update_bn(model, batches, self.update_bn_steps if steps is None else steps)
            if self._bn_steps:
                self._buffers = _cpu({k: v for k, v in model.state_dict().items() if k in self._buffers})
        return model

    def stats(self) -> dict:
        v = self.valley
        return {
            "name": "swad", "rule": v.rule, "state": v.state, "finished": v.finished,
            "n_averaged": self._iterates, "segments_averaged": self._additions, "accepted": list(v.accepted),
            "segments_seen": len(v.losses), "start": v.start, "end": v.end, "stopped_at": v.stopped_at,
            "threshold": v.threshold, "queued": len(self._segments), "fallback": self._fallback,
            "bn_steps": self._bn_steps,
        }

    def state_dict(self) -> dict:
        return {
            "valley": self.valley.state_dict(), "early_stop": self.early_stop,
            "running": _cpu(self._running), "running_count": self._running_count,
            "segments": {i: s.as_dict() for i, s in self._segments.items()},
            "total": self._total, "count": self._count, "iterates": self._iterates, "additions": self._additions,
            "buffers": self._buffers, "start": None if self._start is None else self._start.as_dict(),
            "last_buffers": self._last_buffers, "fallback": self._fallback, "bn_steps": self._bn_steps,
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
        self._total, self._count, self._buffers = _cpu(d["total"]), d["count"], d["buffers"]
        self._iterates, self._additions = d["iterates"], d["additions"]
        self._start = Segment(**d["start"]) if d["start"] else None
        self._last_buffers, self._fallback, self._bn_steps = d["last_buffers"], d["fallback"], d["bn_steps"]

    # --- internals -------------------------------------------------------------------------------
    def _buffers_of(self, module: nn.Module) -> dict:
        names = set(self._names)
        return _cpu({k: v for k, v in module.state_dict().items() if k not in names})

    def _reset_running(self) -> None:
        if self._running is not None:
            for t in self._running.values():
                t.zero_()
        self._running_count = 0

    def _accept(self, indices: list[int]) -> None:
        for i in indices:
            self._add(self._segments[i])
        for i in [i for i in self._segments if i not in self.valley.pending]:
            del self._segments[i]

    def _add(self, seg: Segment) -> None:
        """One addition: the segment's mean with weight 1 (khanrc) or its iterates (paper)."""
        term, weight = ({n: t / seg.count for n, t in seg.total.items()}, 1) if self._khanrc else (seg.total, seg.count)
        if self._total is None:
            self._total = {n: t.clone() for n, t in term.items()}
        else:
            for n, t in term.items():
                self._total[n].add_(t)
        self._count += weight
        self._iterates += seg.count
        self._additions += 1
        if self._khanrc:
            self._start = None  # khanrc's first addition overwrites the convergence-segment copy
        else:
            self._buffers = seg.buffers

    def _materialise(self, params: State, buffers: dict) -> nn.Module:
        memo = {id(opt): None for opt in _optimizers_of(self._module)}
        averaged = copy.deepcopy(self._module, memo)
        averaged.load_state_dict({**buffers, **params})
        return averaged.eval()
