"""Compute threads that wait passively.

OpenMP threads that run out of work spin for a while before they sleep. On a machine where another
process holds their cores that spinning costs wall time and CPU time, and the CPU-time energy estimate
(and the real power bill) count it. dagrad therefore asks OpenMP to wait passively
(`OMP_WAIT_POLICY=PASSIVE`) unless the user set the variable. OpenMP reads it when its runtime starts
(GNU OpenMP: when torch is imported), so `dagrad` sets it on import, before it imports torch; a process
that imported torch first keeps OpenMP's own policy, and the record header says so.

`OMP_WAIT_POLICY=ACTIVE dagrad ...` keeps spinning threads (benchmarks/contention.py measures both).
"""

from __future__ import annotations

import os
import sys

VARIABLE = "OMP_WAIT_POLICY"
DEFAULT = "PASSIVE"

#: how the policy came about, fixed when dagrad was imported: "user", "dagrad" or "too late"
_ORIGIN: dict[str, str] = {}


def prefer_passive_wait(environ: "os._Environ[str] | dict[str, str]" = os.environ,
                        torch_loaded: bool | None = None) -> str:
    """Set OMP_WAIT_POLICY=PASSIVE unless the user set it or torch (and with it OpenMP) is already loaded;
    returns who decided the policy: "user", "dagrad" or "too late" (torch came first, variable unset)."""
    loaded = "torch" in sys.modules if torch_loaded is None else torch_loaded
    if environ.get(VARIABLE):
        origin = "user"
    elif loaded:
        origin = "too late"
    else:
        environ[VARIABLE] = DEFAULT
        origin = "dagrad"
    _ORIGIN.setdefault("origin", origin)
    return origin


def wait_policy() -> dict:
    """The header's account: the variable's value and who set it ("too late": torch was imported before
    dagrad and OpenMP runs with its own default, which spins)."""
    return {"value": os.environ.get(VARIABLE), "set_by": _ORIGIN.get("origin", "unknown")}
