"""A counter of host syncs that works on CPU too, where nothing ever waits and CUDA's sync debug mode is blind.

It counts every operation that would make the host wait for a GPU: reading a tensor's value (``item``,
``bool``, ``float``, ``int``, formatting: all go through ``aten._local_scalar_dense``), ``tolist`` and
``numpy``, operations whose output size depends on the data (``nonzero``, boolean-mask indexing,
``masked_select``, ``unique``, ``repeat_interleave`` without ``output_size``) and blocking copies from a
device to the host. A ``TorchDispatchMode`` sees every aten call, including the ones made inside torch's
own Python code, so a sync cannot hide behind a helper; ``tolist``/``numpy`` bypass the dispatcher and are
wrapped at the Python level.
"""

from __future__ import annotations

import collections
import contextlib
from typing import Any, Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
SIZE_DEPENDENT = {aten.nonzero, aten.masked_select, aten.unique_consecutive, aten._unique, aten._unique2,
                  aten.unique_dim}


def _blocking_download(func: Any, args: tuple, kwargs: dict) -> bool:
    if func.overloadpacket is aten._to_copy:
        src, dst = args[0], kwargs.get("device")
        return dst is not None and torch.device(dst).type == "cpu" and src.device.type != "cpu" and \
            not kwargs.get("non_blocking", False)
    if func.overloadpacket is aten.copy_:
        dst, src = args[0], args[1]
        return dst.device.type == "cpu" and src.device.type != "cpu" and \
            not (len(args) > 2 and args[2]) and not kwargs.get("non_blocking", False)
    return False


class HostSyncs(TorchDispatchMode):
    """``with HostSyncs() as s: ...`` then ``s.total`` and ``s.kinds`` (a Counter by operation)."""

    def __init__(self) -> None:
        super().__init__()
        self.kinds: collections.Counter[str] = collections.Counter()
        self._inside = False  # within a counted tolist/numpy: its own download is the same sync

    @property
    def total(self) -> int:
        return sum(self.kinds.values())

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        packet = func.overloadpacket
        if self._inside:
            pass
        elif func is aten._local_scalar_dense.default:
            self.kinds["value read (item/bool/float/int)"] += 1
        elif packet in SIZE_DEPENDENT:
            self.kinds[str(packet)] += 1
        elif func is aten.repeat_interleave.Tensor and kwargs.get("output_size") is None:
            self.kinds["repeat_interleave without output_size"] += 1
        elif packet is aten.index and any(i is not None and i.dtype == torch.bool for i in args[1]):
            self.kinds["boolean mask index"] += 1
        elif _blocking_download(func, args, kwargs):
            self.kinds["blocking copy to host"] += 1
        return func(*args, **kwargs)

    @contextlib.contextmanager
    def counting(self) -> Iterator["HostSyncs"]:
        """Enter the mode and also count ``Tensor.tolist`` / ``Tensor.numpy`` calls."""
        originals = {name: getattr(torch.Tensor, name) for name in ("tolist", "numpy")}

        def wrap(name: str) -> Any:
            def counted(tensor: torch.Tensor, *a: Any, **k: Any) -> Any:
                self.kinds[f"Tensor.{name}"] += 1
                self._inside = True
                try:
                    return originals[name](tensor, *a, **k)
                finally:
                    self._inside = False
            return counted

        try:
            for name in originals:
                setattr(torch.Tensor, name, wrap(name))
            with self:
                yield self
        finally:
            for name, method in originals.items():
                setattr(torch.Tensor, name, method)
