"""Plain, strict-JSON data from what runs produce: the one cleaner records, statistics and readings share."""

from __future__ import annotations

import enum
import math
from pathlib import PurePath
from typing import Any


def plain(value: Any) -> Any:
    """`value` as JSON-safe plain data: tensors and numpy scalars become numbers (or lists), NaN and
    infinities become null (JSON has no such numbers), tuples become lists, mapping keys strings, enums
    their values, paths strings; anything else unknown becomes its string."""
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)  # exactly str: a subclass (torch's TorchVersion) is not plain data for torch.load
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(plain(k)) if not isinstance(k, str) else str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "tolist") and callable(value.tolist):  # torch tensors, numpy arrays and scalars
        return plain(value.tolist())
    return str(value)
