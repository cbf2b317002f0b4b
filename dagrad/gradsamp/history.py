"""The last two epoch-end states that a GradSamp draw is estimated from, plus the counters schedules need.

A state is a detached CPU clone of every trainable parameter and every floating-point buffer, keyed by
name. ``push`` is called once per epoch with the epoch-end module: after a *sampled* epoch the sampled
theta_t is pushed too, so it becomes theta_{t-1} of the next decision and two consecutive sampled epochs
extrapolate from (sampled, previous) states. An epoch whose draw was rejected and theta_{t-1} kept is
not pushed: its end state equals the newest one already held, and pushing it would make Delta zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from dagrad.errors import CheckpointError

KINDS = ("train", "sampled", "kept")
"""What an epoch did: trained for real, was sampled, or kept theta_{t-1} (rejected draw, nothing trained)."""


@dataclass
class Snapshot:
    """One epoch-end state: trainable parameters and floating-point buffers, CPU clones, by name."""

    params: dict[str, Tensor] = field(default_factory=dict)
    buffers: dict[str, Tensor] = field(default_factory=dict)

    @classmethod
    def of(cls, module: nn.Module) -> "Snapshot":
        params = {n: p.detach().to("cpu", copy=True) for n, p in module.named_parameters() if p.requires_grad}
        buffers = {n: b.detach().to("cpu", copy=True) for n, b in module.named_buffers() if b.is_floating_point()}
        return cls(params, buffers)

    def to_dict(self) -> dict[str, dict[str, Tensor]]:
        return {"params": dict(self.params), "buffers": dict(self.buffers)}


def trainable(module: nn.Module) -> dict[str, nn.Parameter]:
    """Trainable parameters by name (shared parameters once), sorted by name for a fixed draw order."""
    return dict(sorted((n, p) for n, p in module.named_parameters() if p.requires_grad))


def floating_buffers(module: nn.Module) -> dict[str, Tensor]:
    """Floating-point buffers by name, sorted; integer buffers (e.g. num_batches_tracked) are never touched."""
    return dict(sorted((n, b) for n, b in module.named_buffers() if b is not None and b.is_floating_point()))


class History:
    """theta_{t-1} (``prev``), theta_{t-2} (``prev2``) and how many epochs were real / sampled in a row."""

    def __init__(self) -> None:
        self.prev: Snapshot | None = None
        self.prev2: Snapshot | None = None
        self.real_epochs = 0
        self.consecutive_sampled = 0

    @property
    def ready(self) -> bool:
        """True once two epoch-end states exist, so Delta = prev - prev2 can be formed."""
        return self.prev is not None and self.prev2 is not None

    def push(self, module: nn.Module, kind: str = "train") -> None:
        """Record the end of an epoch of ``kind`` ('train', 'sampled' or 'kept'; see the module docstring)."""
        if kind not in KINDS:
            raise ValueError(f"History.push: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if kind == "train":
            self.real_epochs += 1
            self.consecutive_sampled = 0
        else:
            self.consecutive_sampled += 1
        if kind != "kept":
            self.prev2, self.prev = self.prev, Snapshot.of(module)

    def deltas(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """(parameter Deltas, buffer Deltas) = prev - prev2, by name; an error if fewer than two states exist."""
        if self.prev is None or self.prev2 is None:
            raise RuntimeError("GradSamp history holds fewer than two epoch-end states; cannot form Delta")
        return _diff(self.prev.params, self.prev2.params), _diff(self.prev.buffers, self.prev2.buffers)

    def state_dict(self) -> dict[str, Any]:
        return {
            "prev": None if self.prev is None else self.prev.to_dict(),
            "prev2": None if self.prev2 is None else self.prev2.to_dict(),
            "real_epochs": self.real_epochs,
            "consecutive_sampled": self.consecutive_sampled,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            self.prev = _snapshot(state["prev"])
            self.prev2 = _snapshot(state["prev2"])
            self.real_epochs = int(state["real_epochs"])
            self.consecutive_sampled = int(state["consecutive_sampled"])
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"GradSamp history state is malformed ({exc!r}); cannot resume") from exc


def _snapshot(d: dict[str, dict[str, Tensor]] | None) -> Snapshot | None:
    if d is None:
        return None
    return Snapshot({k: v.detach().cpu().clone() for k, v in d["params"].items()},
                    {k: v.detach().cpu().clone() for k, v in d["buffers"].items()})


def _diff(a: dict[str, Tensor], b: dict[str, Tensor]) -> dict[str, Tensor]:
    if a.keys() != b.keys():
        missing = sorted(set(a) ^ set(b))
        raise RuntimeError(f"GradSamp history states hold different tensors ({missing[:5]}); the model changed")
    out = {}
    for name in sorted(a):
        if a[name].shape != b[name].shape:
            raise RuntimeError(f"GradSamp history: {name} changed shape {tuple(b[name].shape)} -> {tuple(a[name].shape)}")
        out[name] = a[name] - b[name]
    return out
