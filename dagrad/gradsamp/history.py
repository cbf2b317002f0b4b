"""The last two epoch-end states that a GradSamp draw is estimated from, plus the counters schedules need.

A state is a copy of every trainable parameter and every floating-point buffer, by name. It is kept in
flat stores, one per (device, dtype) group of tensors laid end to end (see ``Layout``), so that forming
Delta, drawing and writing take a handful of kernels whatever the number of tensors. Stores stay on the
tensors' own device by default; ``store="cpu"`` keeps them in host memory (pinned when CUDA is present,
filled asynchronously) for models that do not fit on the device twice.

``push`` is called once per epoch with the epoch-end module. It reuses the older store (theta_{t-2} is
overwritten and becomes theta_{t-1}), so the snapshot every epoch pays for allocates nothing. After a
*sampled* epoch the sampled theta_t is pushed too, so it becomes theta_{t-1} of the next decision. An
epoch whose draw was rejected and theta_{t-1} kept is not pushed: pushing it would make Delta zero.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from dagrad.run.epochs import EpochKind, EpochOutcome
from dagrad.utils.errors import CheckpointError

TRAINED = EpochOutcome(EpochKind.TRAIN)
STORES = ("device", "cpu")
"""Where the history lives: on each tensor's own device, or in (pinned) host memory."""
PARTS = ("params", "buffers")


def _drawn(module: nn.Module, name: str) -> bool:
    """Whether tensor `name` is in one of the submodules the module declares sampled (`sampled_modules`;
    None or absent: every tensor)."""
    declared = getattr(module, "sampled_modules", None)
    return declared is None or any(name.startswith(f"{prefix}.") for prefix in declared)


def trainable(module: nn.Module) -> dict[str, nn.Parameter]:
    """Trainable parameters by name (shared parameters once), sorted by name for a fixed draw order; only
    those of the submodules the module declares sampled, if it declares them."""
    return dict(sorted((n, p) for n, p in module.named_parameters() if p.requires_grad and _drawn(module, n)))


def floating_buffers(module: nn.Module) -> dict[str, Tensor]:
    """Floating-point buffers by name, sorted; integer buffers (e.g. num_batches_tracked) are never touched,
    nor buffers outside the submodules the module declares sampled."""
    return dict(sorted((n, b) for n, b in module.named_buffers()
                       if b is not None and b.is_floating_point() and _drawn(module, n)))


class Layout:
    """Where each of several same-dtype tensors lies in one flat 1-d tensor, in sorted-name order.

    One layout serves every flat tensor of the same model part (history stores, Delta, the step, the
    proposal), so it caches the per-tensor element counts on each device: the tiny tensor that broadcasts
    per-tensor values to their elements without a host sync. Build layouts with ``layout_for``.
    """

    def __init__(self, names: tuple[str, ...], shapes: tuple[torch.Size, ...], dtype: torch.dtype) -> None:
        self.names, self.shapes, self.dtype = names, shapes, dtype
        self.numels = tuple(math.prod(s) for s in shapes)
        self.total = sum(self.numels)
        self._cache: dict[tuple[str, torch.device, torch.dtype], Tensor] = {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and (self.names, self.shapes, self.dtype) == (other.names, other.shapes,
                                                                                        other.dtype)

    def __hash__(self) -> int:
        return hash((self.names, self.shapes, self.dtype))

    def split(self, flat: Tensor) -> list[Tensor]:
        """The 1-d views of ``flat`` that belong to each tensor."""
        return list(flat.split(self.numels))

    def views(self, flat: Tensor) -> list[Tensor]:
        """The views of ``flat`` shaped like each tensor."""
        return [v.view(s) for v, s in zip(flat.split(self.numels), self.shapes)]

    def flatten(self, tensors: list[Tensor]) -> Tensor:
        """A new flat tensor holding ``tensors`` (ordered as ``names``) end to end (one C++ call)."""
        with torch.no_grad():
            flat = torch._C._nn.flatten_dense_tensors(tensors)
            return flat.clone() if len(tensors) == 1 else flat  # one tensor comes back as a view of itself

    def counts(self, device: torch.device, dtype: torch.dtype = torch.int64) -> Tensor:
        """Element count of each tensor, as a device vector (built once per device and dtype)."""
        return self._uploaded("counts", self.numels, device, dtype)

    def expand(self, values: Tensor) -> Tensor:
        """Per-tensor ``values`` (first dimension: one entry per tensor) repeated for each of its elements.

        The element-to-tensor index is one scan of a few marks at the tensors' starts (repeat_interleave's
        index kernel walks each tensor's elements in one thread, which is slow on a GPU).
        """
        if len(self.numels) == 1:
            return values.expand(self.total, *values.shape[1:])
        nonempty = [i for i, n in enumerate(self.numels) if n]
        starts = [s for s, n in zip(itertools.accumulate((0,) + self.numels), self.numels) if n]
        jumps = [b - a for a, b in zip([0] + nonempty, nonempty)]  # index steps at each start
        index = torch.int32 if len(self.numels) < 2**31 else torch.int64
        marks = torch.zeros(self.total, dtype=index, device=values.device)
        marks.index_put_((self._uploaded("starts", starts, values.device, torch.int64),),
                         self._uploaded("jumps", jumps, values.device, index))
        return values.index_select(0, marks.cumsum(0, dtype=index))

    def _uploaded(self, name: str, numbers: list[int] | tuple[int, ...], device: torch.device,
                  dtype: torch.dtype) -> Tensor:
        key = (name, torch.device(device), dtype)
        if key not in self._cache:
            pin = key[1].type == "cuda"  # pinned + non_blocking: the upload does not stall the host
            host = torch.tensor(numbers, dtype=torch.int64, pin_memory=pin)
            self._cache[key] = host.to(key[1], non_blocking=True).to(dtype)
        return self._cache[key]

    def affine_(self, flat: Tensor, scale: Tensor | None, shift: Tensor) -> Tensor:
        """``flat`` * scale + shift, in place, with per-tensor ``scale``/``shift`` vectors of flat's dtype.

        On a CPU per-tensor views are cheapest (no index tensor); elsewhere one broadcast kernel each.
        """
        if flat.device.type == "cpu" and len(self.numels) > 1:
            views = self.split(flat)
            if scale is not None:
                torch._foreach_mul_(views, list(scale.unbind(0)))
            torch._foreach_add_(views, list(shift.unbind(0)))
            return flat
        if scale is None:
            return flat.add_(self.expand(shift))
        scale_e, shift_e = self.expand(torch.stack([scale, shift], 1)).unbind(1)
        return flat.mul_(scale_e).add_(shift_e)


@functools.lru_cache(maxsize=64)
def layout_for(names: tuple[str, ...], shapes: tuple[torch.Size, ...], dtype: torch.dtype) -> Layout:
    """The one shared Layout of these tensors (cached, so its device counts are built once)."""
    return Layout(names, shapes, dtype)


def groups(tensors: dict[str, Tensor], homes: dict[str, torch.device] | None = None
           ) -> list[tuple[Layout, torch.device, list[Tensor]]]:
    """(layout, device, tensors) per (device, dtype), names sorted in each, groups in a fixed order.

    ``homes`` overrides the device a tensor is grouped under (where it lives in the model).
    """
    by_key: dict[tuple[torch.device, torch.dtype], list[str]] = {}
    for name in sorted(tensors):
        t = tensors[name]
        by_key.setdefault((homes[name] if homes is not None else t.device, t.dtype), []).append(name)
    out = []
    for home, dtype in sorted(by_key, key=lambda k: (str(k[0]), str(k[1]))):
        names = by_key[home, dtype]
        ts = [tensors[n] for n in names]
        out.append((layout_for(tuple(names), tuple(t.shape for t in ts), dtype), home, ts))
    return out


@dataclass
class Part:
    """One flat store: its layout, the flat tensor, and the device its tensors live on in the model."""

    layout: Layout
    flat: Tensor
    home: torch.device
    shaped: list[Tensor] = field(init=False)
    """Views of ``flat`` shaped like each tensor, made once: every epoch's snapshot copies into them."""

    def __post_init__(self) -> None:
        self.shaped = self.layout.views(self.flat)


@dataclass
class Snapshot:
    """One epoch-end state. ``params``/``buffers``: by name, views into the flat stores in ``parts``."""

    params: dict[str, Tensor] = field(default_factory=dict)
    buffers: dict[str, Tensor] = field(default_factory=dict)
    parts: dict[str, list[Part]] = field(default_factory=lambda: {k: [] for k in PARTS})

    @classmethod
    def of(cls, module: nn.Module, store: str = "device", reuse: "Snapshot | None" = None) -> "Snapshot":
        """The module's state now; the flat stores of ``reuse`` are overwritten where they fit."""
        return cls.capture({"params": trainable(module), "buffers": floating_buffers(module)}, store, reuse)

    @classmethod
    def capture(cls, tensors: dict[str, dict[str, Tensor]], store: str, reuse: "Snapshot | None" = None,
                homes: dict[str, torch.device] | None = None) -> "Snapshot":
        snap = cls()
        for kind in PARTS:
            old = {(p.layout, p.home): p for p in (reuse.parts[kind] if reuse is not None else [])}
            for layout, home, srcs in groups(tensors[kind], homes):
                where = home if store == "device" else torch.device("cpu")
                part = old.get((layout, home))
                if part is None or part.flat.device != where:
                    pin = store == "cpu" and torch.cuda.is_available()
                    part = Part(layout, torch.empty(layout.total, dtype=layout.dtype, device=where, pin_memory=pin),
                                home)
                with torch.no_grad():  # a host store fills asynchronously; later uses queue behind it
                    torch._foreach_copy_(part.shaped, srcs, non_blocking=True)
                snap.parts[kind].append(part)
                getattr(snap, kind).update(zip(layout.names, part.shaped))
        return snap

    def to_dict(self) -> dict[str, dict[str, Tensor]]:
        """CPU copies by name (one transfer per flat store; the views share its storage)."""
        return {kind: {n: v for p in self.parts[kind]
                       for n, v in zip(p.layout.names, p.layout.views(p.flat.detach().to("cpu", copy=True)))}
                for kind in PARTS}


class History:
    """theta_{t-1} (``prev``), theta_{t-2} (``prev2``) and how many epochs were real / sampled in a row."""

    def __init__(self, store: str = "device") -> None:
        if store not in STORES:
            raise ValueError(f"History: store must be one of {', '.join(STORES)}, got {store!r}")
        self.store = store
        self.prev: Snapshot | None = None
        self.prev2: Snapshot | None = None
        self.real_epochs = 0
        self.consecutive_sampled = 0
        self._placed = True

    @property
    def ready(self) -> bool:
        """True once two epoch-end states exist, so Delta = prev - prev2 can be formed."""
        return self.prev is not None and self.prev2 is not None

    def push(self, module: nn.Module, outcome: EpochOutcome = TRAINED) -> None:
        """Record the end of an epoch: a trained one counts as real, and θ is snapshotted unless the epoch
        kept θ_{t-1} (a rejected draw with fallback 'keep'; see the module docstring)."""
        if outcome.trained:
            self.real_epochs += 1
            self.consecutive_sampled = 0
        else:
            self.consecutive_sampled += 1
        if outcome.moved:
            self.place(module)
            self.prev2, self.prev = self.prev, Snapshot.of(module, self.store, reuse=self.prev2)

    def delta_parts(self, kind: str) -> list[tuple[Layout, torch.device, Tensor]]:
        """(layout, device, flat Delta) per store of ``kind`` ('params'/'buffers'), on the tensors' device."""
        if self.prev is None or self.prev2 is None:
            raise RuntimeError("GradSamp history holds fewer than two epoch-end states; cannot form Delta")
        a, b = getattr(self.prev, kind), getattr(self.prev2, kind)
        if a.keys() != b.keys():
            missing = sorted(set(a) ^ set(b))
            raise RuntimeError(f"GradSamp history states hold different tensors ({missing[:5]}); the model changed")
        for name in a:
            if a[name].shape != b[name].shape:
                raise RuntimeError(f"GradSamp history: {name} changed shape {tuple(b[name].shape)} -> "
                                   f"{tuple(a[name].shape)}")
        older = {(p.layout, p.home): p for p in self.prev2.parts[kind]}
        out = []
        for p in self.prev.parts[kind]:
            q = older.get((p.layout, p.home))
            if q is None:
                raise RuntimeError("GradSamp history states differ in dtype or device; the model changed")
            out.append((p.layout, p.home, p.flat.to(p.home, non_blocking=True) - q.flat.to(p.home, non_blocking=True)))
        return out

    def deltas(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """(parameter Deltas, buffer Deltas) = prev - prev2, by name; an error if fewer than two states exist."""
        return tuple(  # type: ignore[return-value]
            {n: v for layout, _, d in self.delta_parts(kind) for n, v in zip(layout.names, layout.views(d))}
            for kind in PARTS)

    def place(self, module: nn.Module) -> None:
        """Move loaded states next to ``module``'s tensors (or into pinned host memory); a no-op once placed."""
        if self._placed:
            return
        homes = {n: t.device for n, t in [*module.named_parameters(), *module.named_buffers()] if t is not None}
        for attr in ("prev", "prev2"):
            snap = getattr(self, attr)
            if snap is not None:
                tensors = {k: getattr(snap, k) for k in PARTS}
                where = {n: homes.get(n, t.device) for k in PARTS for n, t in tensors[k].items()}
                setattr(self, attr, Snapshot.capture(tensors, self.store, homes=where))
        self._placed = True

    def state_dict(self) -> dict[str, Any]:
        """Plain data and CPU tensors only, so a checkpoint loads with ``torch.load(weights_only=True)``."""
        if self.store == "cpu" and torch.cuda.is_available():
            torch.cuda.synchronize()  # host stores may still be filling asynchronously
        snaps = {k: None if v is None else v.to_dict() for k, v in (("prev", self.prev), ("prev2", self.prev2))}
        return {**snaps, "real_epochs": self.real_epochs, "consecutive_sampled": self.consecutive_sampled}

    def load_state_dict(self, state: dict[str, Any], module: nn.Module | None = None) -> None:
        """Restore from ``state_dict()``; the states go next to ``module`` now, or at its next ``place``."""
        try:
            prev, prev2 = _snapshot(state["prev"], self.store), _snapshot(state["prev2"], self.store)
            real, consecutive = int(state["real_epochs"]), int(state["consecutive_sampled"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"GradSamp history state is malformed ({exc!r}); cannot resume") from exc
        self.prev, self.prev2, self.real_epochs, self.consecutive_sampled = prev, prev2, real, consecutive
        self._placed = False
        if module is not None:
            self.place(module)


def _snapshot(d: dict[str, dict[str, Tensor]] | None, store: str) -> Snapshot | None:
    if d is None:
        return None
    tensors = {k: {n: t.detach() for n, t in d[k].items()} for k in PARTS}
    return Snapshot.capture(tensors, store)
