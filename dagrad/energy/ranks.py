"""One job's energy when it runs as several processes (multi-GPU training, dagrad.run.distributed).

Each process meters its own GPU. A node's RAPL counters measure the whole CPU package, so only the
node's first process (local rank 0) reads them; the CPU-time estimate is each process's own CPU time, so
every process keeps it. A window's figures are then added over the processes, component by component:
a component some process could not read makes the sum unknown (never a partial figure), and a component
only some processes meter (RAPL) is the sum of those. Wall seconds are the longest process's; CPU
seconds add up. Each summed component says over how many processes it was added (`params.ranks`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from dagrad.energy.reading import ComponentEnergy, Reading, co2_grams

if TYPE_CHECKING:  # reading records needs no torch
    from dagrad.run.distributed import Distributed

UNKNOWN_ACROSS_RANKS = "unavailable:ranks"


def combine_ranks(readings: list[Reading], grid_intensity_g_per_kwh: Optional[float] = None) -> Reading:
    """The same window of every process, as one reading (see the module docstring)."""
    first = readings[0]
    if len(readings) == 1:
        return first
    out = Reading(first.name, max(r.seconds for r in readings), sum(r.cpu_seconds for r in readings))
    for key in sorted({k for r in readings for k in r.components}):
        parts = [r.components[key] for r in readings if key in r.components]
        sources = sorted({p.source for p in parts})
        if any(p.joules is None for p in parts):
            reasons = sorted({str(p.params.get("reason", p.source)) for p in parts if p.joules is None})
            out.components[key] = ComponentEnergy(None, UNKNOWN_ACROSS_RANKS if len(sources) > 1 else sources[0], {
                "reason": "; ".join(reasons), "ranks": len(parts)})
        else:
            out.components[key] = ComponentEnergy(sum(p.joules for p in parts), "+".join(sources),
                                                  {"ranks": len(parts)})
    out.co2_grams = co2_grams(out.joules, grid_intensity_g_per_kwh) if grid_intensity_g_per_kwh is not None \
        else _co2_sum(readings)
    out.conditions = _conditions(first.conditions, out.cpu_seconds, len(readings))
    return out


def _conditions(first: Optional[dict], cpu_seconds: float, ranks: int) -> Optional[dict]:
    """Rank 0's view of the machine, with every rank's CPU time counted as the job's own (exact when the
    ranks share one node)."""
    if not first:
        return first
    out = {**first, "ranks": ranks}
    machine, capacity = first.get("machine_cpu_s"), first.get("capacity_cpu_s")
    if machine is not None and capacity:
        out["other_cpu_share"] = round(min(1.0, max(0.0, (machine - cpu_seconds) / capacity)), 4)
    return out


def _co2_sum(readings: list[Reading]) -> Optional[float]:
    co2 = [r.co2_grams for r in readings]
    return None if any(c is None for c in co2) else sum(co2)


def metered_parts(selections: list[dict], hosts: list[str]) -> dict:
    """How many GPUs and nodes a job's meters cover: from every process's meter selection (its backends)
    and host name."""
    gpus = sum(1 for s in selections if "nvml" in s.get("selected", []) or "zeus" in s.get("selected", []))
    package_nodes = {h for s, h in zip(selections, hosts) if "rapl" in s.get("selected", [])}
    estimated = sum(1 for s in selections if s.get("estimated"))
    return {"processes": len(selections), "nodes": len(set(hosts)), "gpus_metered": gpus,
            "nodes_metered_by_rapl": len(package_nodes), "processes_estimated": estimated}


def summed_over_ranks(dist: Distributed, *readings: Reading) -> tuple[Reading, ...]:
    """Meter readings of the same windows on every rank, each summed over the ranks (`combine_ranks`),
    through one gather of the job's collectives; in one process the readings as they are."""
    if not dist.active:
        return readings
    everyone = dist.gather_objects([r.to_dict() for r in readings])
    return tuple(combine_ranks([Reading.from_dict(rank[k]) for rank in everyone]) for k in range(len(readings)))
