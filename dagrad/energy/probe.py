"""`dagrad energy probe`: which energy backend is active here, why not the others, and a quick calibration.

The calibration runs an idle window (sleep) and a busy window (a CPU matmul loop) of `seconds` each,
so a user can see what the meter reports for known load: with the CPU-time estimate the idle window
reads ~0 J (idle power is not modelled) while a RAPL counter shows the package's idle draw.
"""

from __future__ import annotations

import time
from typing import Any

from dagrad.energy.meter import Meter
from dagrad.energy.reading import Reading
from dagrad.energy.select import build_meter, resolve_energy


def _busy(seconds: float) -> int:
    """Multiply 256x256 matrices until `seconds` have passed; returns the number of products."""
    import torch

    g = torch.Generator().manual_seed(0)
    a = torch.randn(256, 256, generator=g)
    b = torch.randn(256, 256, generator=g)
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        a = torch.tanh(a @ b)
        n += 1
    return n


def _format_reading(r: Reading, extra: str = "") -> list[str]:
    joules = "unknown" if r.joules is None else f"{r.joules:.3f} J"
    lines = [f"  {r.name:<5} {r.seconds:7.3f} s wall  {r.cpu_seconds:7.3f} s CPU  {joules}{extra}"]
    for comp, ce in sorted(r.components.items()):
        value = "None" if ce.joules is None else f"{ce.joules:.3f} J"
        reason = f"  ({ce.params['reason']})" if ce.joules is None and "reason" in ce.params else ""
        lines.append(f"        {comp:<5} {value:>12}  {ce.source}{reason}")
    return lines


def _format_describe(meter: Meter) -> list[str]:
    d = meter.describe()
    hw = d.get("hardware", {})
    lines = [
        f"energy backend requested: {d.get('requested')}; active: {', '.join(d.get('selected', []))}"
        + ("  [ESTIMATED]" if d.get("estimated") else ""),
    ]
    for name, why in d.get("not_selected", {}).items():
        lines.append(f"  not {name}: {why}")
    for name, info in d.get("backends", {}).items():
        params = info.get("params", {k: v for k, v in info.items() if k not in ("source",)})
        lines.append(f"  {name}: {info.get('source', '')} {params}")
    lines.append(f"  CPU seconds: {d.get('cpu_seconds_scope')}")
    lines.append(
        f"hardware: {hw.get('cpu_model')}, {hw.get('logical_cpus')} logical CPUs "
        f"({hw.get('usable_cpus')} usable), GPUs: {', '.join(hw.get('gpus') or []) or 'none'}"
    )
    return lines


def probe(cfg: Any, device: str = "cpu", seconds: float = 1.0) -> str:
    """Human-readable report: active backend and why others are not, then idle and busy windows."""
    if not seconds > 0:
        raise ValueError(f"probe seconds must be > 0, got {seconds!r}")
    meter = build_meter(resolve_energy(cfg), device)
    try:
        lines = _format_describe(meter)
        with meter.window("idle") as idle:
            time.sleep(seconds)
        with meter.window("busy") as busy:
            products = _busy(seconds)
    finally:
        meter.close()
    lines.append(f"calibration ({seconds:g} s each):")
    lines += _format_reading(idle, "  [sleep]")
    lines += _format_reading(busy, f"  [{products} matmuls 256x256]")
    for r in (idle, busy):
        if r.joules is not None and r.seconds > 0:
            lines.append(f"  {r.name} mean power: {r.joules / r.seconds:.2f} W")
    return "\n".join(lines)
