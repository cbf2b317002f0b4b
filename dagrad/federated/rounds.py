"""A federated round as record lines: the global model's metrics gathered from the clients' evaluations and
the server's, the round's energy (every client's training and evaluation windows and the server's own,
combined by phase so reports read them as a centralised run's), and per client its kind, examples, energy
and bytes. Rounds are the records' epochs."""

from __future__ import annotations

import math
from typing import Any, Optional

from dagrad.energy.reading import Reading, combine


def merge_metrics(parts: list[dict[str, dict[str, float]]]) -> dict[str, float]:
    """{split}_acc/_loss over all clients' shares of each split, weighted by their example counts (the
    metrics a centralised evaluation of the whole split gives)."""
    sums: dict[str, list[float]] = {}
    for part in parts:
        for split, m in part.items():
            n = float(m["n"])
            if n <= 0:
                continue
            acc, loss, count = sums.setdefault(split, [0.0, 0.0, 0.0])
            sums[split] = [acc + m["acc"] * n, loss + m["loss"] * n, count + n]
    out: dict[str, float] = {}
    for split in sorted(sums):
        acc, loss, n = sums[split]
        out[f"{split}_acc"], out[f"{split}_loss"] = acc / n, loss / n
    return out


def merge_stats(stats: list[tuple[int, dict[str, Any]]]) -> dict[str, float]:
    """Mean update statistics over the clients that trained, weighted by their example counts."""
    totals: dict[str, list[float]] = {}
    for weight, s in stats:
        for key, value in s.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                t = totals.setdefault(key, [0.0, 0.0])
                t[0] += weight * float(value)
                t[1] += weight
    return {k: v / w for k, (v, w) in totals.items() if w > 0}


def phase(name: str, readings: list[Optional[Reading]]) -> Reading:
    """One reading for a phase of the round: the windows of every client and the server, added up."""
    return combine(name, [r for r in readings if r is not None])


def round_kind(kinds: list[str]) -> str:
    """The round's kind: a drawn (or skipped) round when no client trained, else train."""
    if kinds and all(k == kinds[0] for k in kinds) and kinds[0] in ("sampled", "skipped"):
        return kinds[0]
    return "train"


def round_line(round_: int, steps: int, updates: int, kind: str, sampler: str, metrics: dict, stats: dict,
               sampler_stats: Optional[dict], train: Reading, evals: Reading, other: Optional[Reading],
               clients: list[dict], server: dict, fallback: Optional[str] = None) -> dict:
    """The round's record line, with the keys a centralised epoch record has and the federated ones beside."""
    sent = sum(c["bytes"]["sent"] for c in clients)
    received = sum(c["bytes"]["received"] for c in clients)
    return {
        "type": "epoch", "epoch": round_, "step": (round_ + 1) * steps, "updates": updates, "kind": kind,
        "fallback": fallback, "sampler": sampler, "metrics": metrics, "averaged_metrics": None,
        "update_stats": stats, "sampler_stats": sampler_stats or None, "averager": None,
        "energy": {"train": train.to_dict(), "eval": evals.to_dict(),
                   "other": other.to_dict() if other is not None else None},
        "flops": {"train": None, "eval": None, "convention": "not counted in federated runs"},
        "seconds": train.seconds + evals.seconds,
        "federated": {"clients": clients, "server": server,
                      "bytes": {"clients_sent": sent, "clients_received": received}},
    }
