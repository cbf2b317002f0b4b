"""FLOPs as a hardware-independent cost proxy, counted with torch's FlopCounterMode and cached.

Counting intercepts every op (about 1.26x slower steps), so each key - which should identify the
model, input shape and dtype - is counted only its first `period` times; later calls reuse the mean.
"""

from __future__ import annotations

import math
from typing import Callable, Hashable, TypeVar

T = TypeVar("T")


class FlopsTally:
    """Counts FLOPs of a callable with torch.utils.flop_counter.FlopCounterMode the first `period` times
    per key, then reuses the cached mean (counting every step slows it ~1.26x)."""

    convention = (
        "torch.utils.flop_counter.FlopCounterMode: a matmul (m x k)@(k x n) counts 2*m*n*k (one FMA = 2 FLOPs; "
        "fvcore counts 1, do not mix); only matmul (mm/addmm/bmm/baddbmm), convolution and attention ops "
        "(forward and backward) are counted; elementwise, normalisation, pooling, loss and optimizer work count 0"
    )

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._counts: dict[Hashable, list[float]] = {}
        self.counted_calls = 0  # calls that actually ran under the counter (for tests and diagnostics)

    def run(self, key: Hashable, fn: Callable[[], T], period: int = 1) -> tuple[T, float]:
        """fn's result and the FLOPs accounted to this call (NaN when the tally is disabled).

        fn may run a whole training step (forward, loss.backward(), optimizer.step()); backward ops
        are counted too because autograd runs them under the same dispatch mode.
        """
        if not isinstance(period, int) or period < 1:
            raise ValueError(f"period must be an int >= 1, got {period!r}")
        if not self.enabled:
            return fn(), math.nan
        seen = self._counts.setdefault(key, [])
        if len(seen) < period:
            from torch.utils.flop_counter import FlopCounterMode

            with FlopCounterMode(display=False) as counter:
                result = fn()
            flops = float(counter.get_total_flops())
            seen.append(flops)
            self.counted_calls += 1
            return result, flops
        return fn(), sum(seen) / len(seen)

    def cached(self, key: Hashable) -> float | None:
        """Mean FLOPs counted so far for `key`, or None if it was never counted."""
        seen = self._counts.get(key)
        return sum(seen) / len(seen) if seen else None
