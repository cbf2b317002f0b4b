"""What one meter window reports: wall and CPU seconds plus labelled energy per hardware component.

Every energy figure carries a `source` label ("measured:rapl", "estimated:cpu-time", ...) so that
plots never mix measured and estimated joules without saying so. A component that exists but could
not be read has `joules=None`, never a silent 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dagrad.utils.plain import plain

JOULES_PER_KWH = 3.6e6


@dataclass
class ComponentEnergy:
    """Energy of one hardware component (gpu, cpu, dram, ram) over a window, with its provenance."""

    joules: float | None
    source: str
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"joules": self.joules, "source": self.source, "params": plain(self.params)}

    @classmethod
    def from_dict(cls, d: dict) -> ComponentEnergy:
        joules = d.get("joules")
        return cls(None if joules is None else float(joules), str(d["source"]), dict(d.get("params") or {}))


@dataclass
class Reading:
    """One named window: wall seconds, process+children CPU seconds, energy per component, CO2."""

    name: str
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    components: dict[str, ComponentEnergy] = field(default_factory=dict)
    co2_grams: float | None = None
    conditions: dict | None = None  # what else ran meanwhile (dagrad.energy.conditions); None: not recorded

    @property
    def joules(self) -> float | None:
        """Sum over components that could be read; None when none could."""
        known = [c.joules for c in self.components.values() if c.joules is not None]
        return sum(known) if known else None

    @property
    def sources(self) -> list[str]:
        """Sorted distinct source labels of all components (readable or not)."""
        return sorted({c.source for c in self.components.values()})

    def to_dict(self) -> dict:
        """JSON-serialisable form with stable keys; `joules` and `sources` are included for readers, and
        `conditions` when the window recorded them."""
        out = {
            "name": self.name,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "joules": self.joules,
            "co2_grams": self.co2_grams,
            "sources": self.sources,
            "components": {k: self.components[k].to_dict() for k in sorted(self.components)},
        }
        if self.conditions is not None:
            out["conditions"] = plain(self.conditions)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Reading:
        """Inverse of `to_dict` (derived keys `joules` and `sources` are recomputed, not trusted)."""
        try:
            comps = {str(k): ComponentEnergy.from_dict(v) for k, v in (d.get("components") or {}).items()}
            co2 = d.get("co2_grams")
            conditions = d.get("conditions")
            return cls(
                name=str(d["name"]),
                seconds=float(d["seconds"]),
                cpu_seconds=float(d["cpu_seconds"]),
                components=comps,
                co2_grams=None if co2 is None else float(co2),
                conditions=dict(conditions) if isinstance(conditions, dict) else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"not a Reading dict ({exc!r}); expected keys name, seconds, cpu_seconds, components"
            ) from exc


def co2_grams(joules: float | None, grid_intensity_g_per_kwh: float | None) -> float | None:
    """Grams CO2-eq for `joules` at a grid intensity in g/kWh; None when either is unknown."""
    if joules is None or grid_intensity_g_per_kwh is None:
        return None
    return joules / JOULES_PER_KWH * grid_intensity_g_per_kwh


def combine(name: str, readings: list[Reading]) -> Reading:
    """One reading for consecutive windows: seconds and joules added per component. A component some
    window could not read (or did not measure) is unknown in the sum, never a partial figure."""
    out = Reading(name, sum(r.seconds for r in readings), sum(r.cpu_seconds for r in readings))
    for key in sorted({k for r in readings for k in r.components}):
        parts = [r.components.get(key) for r in readings]
        sources = sorted({p.source for p in parts if p is not None})
        if any(p is None or p.joules is None for p in parts):
            out.components[key] = ComponentEnergy(None, UNAVAILABLE_SUM, {
                "reason": f"{key} was unreadable or unmeasured in some of the {len(parts)} windows",
                "sources": sources})
        else:
            out.components[key] = ComponentEnergy(sum(p.joules for p in parts), "+".join(sources),
                                                  {"windows": len(parts)})
    co2 = [r.co2_grams for r in readings]
    out.co2_grams = None if not co2 or any(c is None for c in co2) else sum(co2)
    if any(r.conditions for r in readings):
        from dagrad.energy.conditions import combine_conditions

        out.conditions = combine_conditions([r.conditions for r in readings], out.cpu_seconds)
    return out


UNAVAILABLE_SUM = "unavailable:sum"
