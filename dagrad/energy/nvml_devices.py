"""Which NVML device handles correspond to the GPUs this process can see.

CUDA_VISIBLE_DEVICES lists integers (indices in CUDA's enumeration) or GPU/MIG UUIDs, possibly
abbreviated to a unique prefix; CUDA stops at the first token it cannot use, and so do we. Integer
indices are mapped to NVML indices, which is exact when CUDA_DEVICE_ORDER=PCI_BUS_ID or the GPUs are
identical; when CUDA is initialised we instead map through each CUDA device's UUID, which is exact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class VisibleGpu:
    cuda_index: int  # index as this process's CUDA sees it (cuda:N)
    token: str  # how it was identified: NVML index or UUID
    handle: Any


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _uuid_handle(nvml: Any, token: str, count: int) -> Any | None:
    """Handle for a full UUID or a unique UUID prefix; None when nothing (or several) match."""
    try:
        return nvml.nvmlDeviceGetHandleByUUID(token)
    except Exception:  # noqa: BLE001 - the binding raises several NVMLError subclasses; try prefixes
        pass
    matches = []
    for i in range(count):
        handle = nvml.nvmlDeviceGetHandleByIndex(i)
        if _text(nvml.nvmlDeviceGetUUID(handle)).startswith(token):
            matches.append(handle)
    return matches[0] if len(matches) == 1 else None


def resolve_visible(
    nvml: Any, visible_env: str | None, cuda_uuids: Callable[[], list[str]] | None = None
) -> tuple[list[VisibleGpu], list[str]]:
    """NVML handles of the visible GPUs in CUDA order, plus notes on anything skipped or assumed."""
    count = int(nvml.nvmlDeviceGetCount())
    notes: list[str] = []
    if cuda_uuids is not None:
        gpus = []
        for i, uuid in enumerate(cuda_uuids()):
            uuid = uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"
            handle = _uuid_handle(nvml, uuid, count)
            if handle is None:
                notes.append(f"CUDA device {i} (UUID {uuid}) has no NVML handle; not measured")
                continue
            gpus.append(VisibleGpu(i, uuid, handle))
        return gpus, notes
    if visible_env is None:
        return [VisibleGpu(i, str(i), nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)], notes
    gpus = []
    seen: set[str] = set()
    tokens = [t.strip() for t in visible_env.split(",")]
    for pos, tok in enumerate(tokens):
        handle = None
        if re.fullmatch(r"\d+", tok) and int(tok) < count:
            handle = nvml.nvmlDeviceGetHandleByIndex(int(tok))
            key = _text(nvml.nvmlDeviceGetUUID(handle))
        elif tok.startswith(("GPU-", "MIG-")):
            handle = _uuid_handle(nvml, tok, count)
            key = _text(nvml.nvmlDeviceGetUUID(handle)) if handle is not None else tok
        if handle is None or key in seen:
            rest = ",".join(tokens[pos:])
            if rest:
                notes.append(f"CUDA_VISIBLE_DEVICES: ignored '{rest}' (CUDA stops at the first invalid "
                             f"or repeated entry; {count} NVML device(s) present)")
            break
        seen.add(key)
        gpus.append(VisibleGpu(len(gpus), tok, handle))
    if len(gpus) > 1 and any(g.token.isdigit() for g in gpus):
        notes.append("integer CUDA_VISIBLE_DEVICES entries mapped to NVML indices; exact when "
                     "CUDA_DEVICE_ORDER=PCI_BUS_ID or the GPUs are identical")
    return gpus, notes
