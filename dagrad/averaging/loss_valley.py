"""SWAD's loss-valley rule over segment losses: which segments are averaged, how often, and when to stop.

Segment i is the run of iterates between evaluation i-1 and evaluation i; L_i is the online model's
training-domain validation loss at evaluation i. N_s = n_converge, N_e = n_tolerance,
threshold = (1 + tolerance_ratio) * mean(L_s .. L_{s+N_s-1}). Both rules share the start and, when
N_e >= N_s (SWAD's settings), the stop:

- start s: the first i with L_i <= min(L_i .. L_{i+N_s-1}) (the oldest of the last N_s losses is their
  minimum: no improvement for N_s - 1 evaluations). Known at evaluation s + N_s - 1.
- stop: at evaluation j + N_e - 1 for the first j >= s with min(L_j .. L_{j+N_e-1}) > threshold (khanrc,
  when N_e < N_s: the first j >= s + N_s - N_e + 1, since it adds the segments before unchecked).

`rule="khanrc"` (the default) is khanrc/swad's `LossValley` as its code behaves; `accepted` lists every
segment in the order it is added, repeated when it is added again; the average weighs each addition
equally (see swad.py). With h(k) = max(0, k - N_e + 1), the oldest segment in its queue at evaluation k:

- at convergence (evaluation c = s + N_s - 1), the convergence segment s becomes a placeholder of weight
  zero (it is the average only while nothing has been added), and a look-back adds, if N_e > N_s, the
  segments of Q[b+1:], where Q = [h(c) .. h(c) + N_e - N_s] (the queue's first N_e - N_s + 1 segments:
  s and the N_e - N_s before it, or, when fewer than N_e segments exist, segments after s too) and b is
  one past the last position in Q whose loss is > threshold (0 if none): the first sub-threshold segment
  of the look-back is skipped. If N_e < N_s it adds s+1 .. s+N_s-N_e; if N_e == N_s nothing.
- at every later evaluation k with h(k) >= s: if min(L_{h(k)} .. L_k) > threshold the valley is dead
  and training stops; otherwise segment h(k) is added. So s is added here again after the look-back
  added it, and while fewer than N_e segments exist, h(k) = 0 is added at each evaluation.
- at the end of training, if converged and not dead: for j = h(K)+1 .. K (K the last evaluation), add
  j while min(L_j .. L_K) <= threshold, stopping at the first failure; j < s may be added here.
- never converged: the last segment alone is the model (swad.py).

`rule="paper"` is the paper's lagged rule (Cha et al. 2021, Sec. 3.3). It differs in what is averaged
(and, only when N_e < N_s, in the stop): each segment s .. t_e - 1 counts once (no look-back, no
repeats, no placeholder; swad.py weighs it by its iterates), and the end-of-training flush decides the
undecided segments j >= s in order on the losses seen so far.
Decisions come as soon as they are certain (a segment joins the moment a loss in its window is below
the threshold, and fails when its full window is seen); the accepted set is exactly the lagged rule's.

A non-finite loss (NaN, inf, e.g. a diverged GradSamp draw) counts as +inf under both rules: it can never
signal convergence nor keep a segment in the valley. (khanrc/swad can converge on a window holding
one, with a non-finite threshold; this guard is dagrad's only departure from its rule.)
"""

from __future__ import annotations

import math
from typing import Optional

from dagrad.utils.errors import ConfigError
from dagrad.registry import Option

CONVERGING, AVERAGING, DEAD = "converging", "averaging", "dead"
RULES = ("khanrc", "paper")


#: the loss-valley settings with their valid values, declared once (SWAD registers them as its options)
VALLEY_OPTIONS = {
    "n_converge": Option(3, int, "N_s: evaluations without improvement that start the valley", low=1),
    "n_tolerance": Option(6, int, "N_e: evaluations a segment may wait to fall under the threshold", low=1),
    "tolerance_ratio": Option(0.3, float, "r: threshold = (1 + r) x the start losses' mean", low=0.0),
    "rule": Option("khanrc", str, "khanrc (khanrc/swad's LossValley, exactly) or paper (the paper's lagged rule)",
                   choices=RULES),
}


class LossValley:
    """Decides, one segment loss at a time, which segments the average holds (see the module docstring)."""

    def __init__(self, n_converge: int = 3, n_tolerance: int = 6, tolerance_ratio: float = 0.3,
                 rule: str = "khanrc"):
        self.n_converge = n_converge
        self.n_tolerance = n_tolerance
        self.tolerance_ratio = float(tolerance_ratio)
        self.rule = rule
        self.state = CONVERGING
        self.losses: list[float] = []
        self.start: Optional[int] = None
        self.end: Optional[int] = None  # the segment whose window failed (t_e)
        self.stopped_at: Optional[int] = None  # the evaluation at which the valley died during training
        self.threshold: Optional[float] = None
        self.pending: list[int] = []  # segments the rule may still add (or needs as start/fallback)
        self.accepted: list[int] = []  # in the order added; repeated when added again (khanrc)
        self.finished = False

    def observe(self, loss: float) -> list[int]:
        """Record the next segment's loss; return the segments added to the average because of it."""
        if self.finished:
            raise RuntimeError("LossValley.observe: the rule was already finished")
        loss = float(loss)
        self.losses.append(loss if math.isfinite(loss) else math.inf)
        if self.state == DEAD:
            return []
        joined = self._observe_khanrc() if self.rule == "khanrc" else self._observe_paper()
        self.accepted.extend(joined)
        return joined

    def finish(self) -> list[int]:
        """End of training: flush what is queued, on the losses seen so far (idempotent)."""
        joined: list[int] = []
        if self.state == AVERAGING and not self.finished:
            joined = self._flush_khanrc() if self.rule == "khanrc" else self._decide_paper(final=True)
            self.accepted.extend(joined)
        self.finished = True
        self.pending = []
        return joined

    # --- shared ----------------------------------------------------------------------------------
    def _converges(self) -> bool:
        """True (and start, threshold set) if the last n_converge losses show convergence."""
        window = self.losses[-self.n_converge:]
        if len(window) < self.n_converge or not all(map(math.isfinite, window)) or window[0] > min(window):
            return False
        self.state = AVERAGING
        self.start = len(self.losses) - self.n_converge
        self.threshold = sum(window) / len(window) * (1.0 + self.tolerance_ratio)
        return True

    def _die(self, segment: int, during_training: bool = True) -> None:
        self.state, self.end = DEAD, segment
        if during_training:
            self.stopped_at = len(self.losses) - 1
        self.pending = []

    # --- khanrc/swad -----------------------------------------------------------------------------
    def _head(self, k: int) -> int:
        """The oldest segment in khanrc's n_tolerance-long queue at evaluation k."""
        return max(0, k - self.n_tolerance + 1)

    def _observe_khanrc(self) -> list[int]:
        k = len(self.losses) - 1
        if self.state == CONVERGING:
            joined = self._look_back(k) if self._converges() else []
        else:
            head = self._head(k)
            if head < self.start:
                joined = []
            elif min(self.losses[head:]) > self.threshold:
                self._die(head)
                return []
            else:
                joined = [head]
        span = self.n_tolerance if self.state == AVERAGING else max(self.n_tolerance, self.n_converge)
        self.pending = list(range(max(0, k - span + 1), k + 1))
        return joined

    def _look_back(self, k: int) -> list[int]:
        s, n_c, n_t = self.start, self.n_converge, self.n_tolerance
        if n_t <= n_c:
            return list(range(s + 1, s + 1 + n_c - n_t))
        queue = list(range(self._head(k), k + 1))[: n_t - n_c + 1]
        above = [pos for pos, j in enumerate(queue) if self.losses[j] > self.threshold]
        first = above[-1] + 1 if above else 0
        return queue[first + 1:]

    def _flush_khanrc(self) -> list[int]:
        last = len(self.losses) - 1
        joined = []
        for j in range(self._head(last) + 1, last + 1):
            if min(self.losses[j:]) > self.threshold:
                break
            joined.append(j)
        return joined

    # --- the paper's lagged rule -----------------------------------------------------------------
    def _observe_paper(self) -> list[int]:
        self.pending.append(len(self.losses) - 1)
        if self.state == CONVERGING:
            self.pending = self.pending[-self.n_converge:]
            if not self._converges():
                return []
        return self._decide_paper(final=False)

    def _decide_paper(self, final: bool) -> list[int]:
        joined = []
        while self.pending:
            j = self.pending[0]
            window = self.losses[j:j + self.n_tolerance]
            if min(window) <= self.threshold:
                joined.append(self.pending.pop(0))
            elif len(window) == self.n_tolerance or final:
                self._die(j, during_training=not final)
            else:
                break
        return joined

    # --- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "n_converge": self.n_converge, "n_tolerance": self.n_tolerance, "tolerance_ratio": self.tolerance_ratio,
            "rule": self.rule, "state": self.state, "losses": list(self.losses), "start": self.start,
            "end": self.end, "stopped_at": self.stopped_at, "threshold": self.threshold,
            "pending": list(self.pending), "accepted": list(self.accepted), "finished": self.finished,
        }

    def load_state_dict(self, d: dict) -> None:
        settings = (d["n_converge"], d["n_tolerance"], d["tolerance_ratio"], d["rule"])
        if settings != (self.n_converge, self.n_tolerance, self.tolerance_ratio, self.rule):
            raise ConfigError(
                f"averaging: the checkpoint used n_converge, n_tolerance, tolerance_ratio, rule = {settings}, "
                f"this run {(self.n_converge, self.n_tolerance, self.tolerance_ratio, self.rule)}; "
                "resume with the same settings"
            )
        self.state, self.losses = d["state"], list(d["losses"])
        self.start, self.end, self.threshold = d["start"], d["end"], d["threshold"]
        self.stopped_at = d["stopped_at"]
        self.pending, self.accepted, self.finished = list(d["pending"]), list(d["accepted"]), d["finished"]
