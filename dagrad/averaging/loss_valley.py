"""SWAD's loss-valley rule over segment losses, as the paper states it (Cha et al. 2021, Sec. 3.3).

Segment i is the run of iterates between evaluation i-1 and evaluation i; L_i is the online model's
training-domain validation loss at evaluation i. With N_s = n_converge, N_e = n_tolerance,
r = 1 + tolerance_ratio:

- start t_s: the first i with L_i <= min(L_i .. L_{i+N_s-1}) (the oldest of the last N_s losses is their
  minimum: no improvement for N_s - 1 evaluations). Known at evaluation t_s + N_s - 1.
- threshold = r * mean(L_{t_s} .. L_{t_s+N_s-1}).
- segment j >= t_s joins the average if min(L_j .. L_{j+N_e-1}) <= threshold; the first j that fails is
  t_e: the valley is dead, SWAD stops training, and no later segment joins.
- at the end of training (`finish`), still-undecided segments are decided on the losses seen so far,
  in order, stopping at the first failure (SWAD's flush).

Decisions are made as soon as they are certain: a segment joins the moment any loss in its window is
below the threshold (its window minimum can only fall), and fails when its full window is seen. The
accepted set and the stopping evaluation are exactly those of the paper's lagged rule (a later segment
can only be accepted once every earlier one has been, because its window is a suffix of theirs).

Deviations from khanrc/swad's `LossValley` (deliberate, small weight effects): no look-back that adds
sub-threshold segments *before* t_s when n_tolerance > n_converge (SWAD's version also skips the first
of those and can count the convergence segment twice); each segment counts once. A non-finite loss
(NaN, inf, e.g. a diverged GradSamp draw) counts as +inf: it can never signal convergence nor keep a
segment in the valley.
"""

from __future__ import annotations

import math
from typing import Optional

from dagrad.errors import ConfigError

CONVERGING, AVERAGING, DEAD = "converging", "averaging", "dead"


def check_valley_settings(n_converge: int, n_tolerance: int, tolerance_ratio: float) -> None:
    """Raise ConfigError naming the first bad averaging.* setting."""
    for key, value in (("n_converge", n_converge), ("n_tolerance", n_tolerance)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"averaging.{key}: expected an integer >= 1, got {value!r}")
    if not isinstance(tolerance_ratio, (int, float)) or not math.isfinite(tolerance_ratio) or tolerance_ratio < 0:
        raise ConfigError(f"averaging.tolerance_ratio: expected a finite number >= 0, got {tolerance_ratio!r}")


class LossValley:
    """Decides, one segment loss at a time, which segments belong to the loss valley."""

    def __init__(self, n_converge: int = 3, n_tolerance: int = 6, tolerance_ratio: float = 0.3):
        check_valley_settings(n_converge, n_tolerance, tolerance_ratio)
        self.n_converge = n_converge
        self.n_tolerance = n_tolerance
        self.tolerance_ratio = float(tolerance_ratio)
        self.state = CONVERGING
        self.losses: list[float] = []
        self.start: Optional[int] = None
        self.end: Optional[int] = None  # first segment that failed (t_e)
        self.threshold: Optional[float] = None
        self.pending: list[int] = []  # segments still needed: start candidates, then undecided ones
        self.accepted: list[int] = []
        self.finished = False

    def observe(self, loss: float) -> list[int]:
        """Record the next segment's loss; return the segments that joined the valley because of it."""
        if self.finished:
            raise RuntimeError("LossValley.observe: the rule was already finished")
        loss = float(loss)
        index = len(self.losses)
        self.losses.append(loss if math.isfinite(loss) else math.inf)
        if self.state == DEAD:
            return []
        self.pending.append(index)
        if self.state == CONVERGING:
            self.pending = self.pending[-self.n_converge:]
            window = self.losses[-self.n_converge:]
            if len(window) < self.n_converge or not all(map(math.isfinite, window)) or window[0] > min(window):
                return []
            self.state = AVERAGING
            self.start = index - self.n_converge + 1
            self.threshold = sum(window) / len(window) * (1.0 + self.tolerance_ratio)
        return self._decide(final=False)

    def finish(self) -> list[int]:
        """End of training: decide the queued segments on the losses seen so far (idempotent)."""
        accepted = self._decide(final=True) if self.state == AVERAGING and not self.finished else []
        self.finished = True
        return accepted

    def _decide(self, final: bool) -> list[int]:
        joined = []
        while self.pending:
            j = self.pending[0]
            window = self.losses[j:j + self.n_tolerance]
            if min(window) <= self.threshold:
                joined.append(self.pending.pop(0))
            elif len(window) == self.n_tolerance or final:
                self.state, self.end = DEAD, j
                self.pending.clear()
            else:
                break
        self.accepted.extend(joined)
        return joined

    def state_dict(self) -> dict:
        return {
            "n_converge": self.n_converge, "n_tolerance": self.n_tolerance, "tolerance_ratio": self.tolerance_ratio,
            "state": self.state, "losses": list(self.losses), "start": self.start, "end": self.end,
            "threshold": self.threshold, "pending": list(self.pending), "accepted": list(self.accepted),
            "finished": self.finished,
        }

    def load_state_dict(self, d: dict) -> None:
        settings = (d["n_converge"], d["n_tolerance"], d["tolerance_ratio"])
        if settings != (self.n_converge, self.n_tolerance, self.tolerance_ratio):
            raise ConfigError(
                f"averaging: the checkpoint used n_converge, n_tolerance, tolerance_ratio = {settings}, "
                f"this run {(self.n_converge, self.n_tolerance, self.tolerance_ratio)}; resume with the same settings"
            )
        self.state, self.losses = d["state"], list(d["losses"])
        self.start, self.end, self.threshold = d["start"], d["end"], d["threshold"]
        self.pending, self.accepted, self.finished = list(d["pending"]), list(d["accepted"]), d["finished"]
