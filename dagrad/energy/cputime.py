"""CPU seconds used by this process and all its children, including children that are still alive.

`resource.getrusage(RUSAGE_CHILDREN)` only covers children that have exited and been waited for, so
persistent DataLoader workers (and DomainBed-style infinite loaders, whose workers live for the whole
run) would be missed. On Linux we therefore add the live descendants' times from /proc, walking
`/proc/<pid>/task/<tid>/children`. When a live child exits and is reaped its time moves from the
/proc sum into RUSAGE_CHILDREN, so the total stays monotone (up to the 1/CLK_TCK resolution of /proc).
"""

from __future__ import annotations

import glob
import os
import resource


class CpuClock:
    """Process CPU seconds = self + reaped children (getrusage) + live descendants (/proc, Linux)."""

    def __init__(self, include_live_children: bool = True, proc_root: str = "/proc") -> None:
        self._proc = proc_root
        self._tick = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
        probe = glob.glob(f"{proc_root}/{os.getpid()}/task/*/children")
        self.live_children = include_live_children and bool(probe)
        if not include_live_children:
            self.scope_note = "self + reaped children (getrusage); live children not counted (disabled)"
        elif self.live_children:
            self.scope_note = "self + reaped children (getrusage) + live descendants (/proc)"
        else:
            self.scope_note = (
                "self + reaped children (getrusage); live children not counted "
                f"({proc_root}/<pid>/task/*/children unavailable)"
            )

    def seconds(self) -> float:
        """Current cumulative CPU seconds (user + system)."""
        own = resource.getrusage(resource.RUSAGE_SELF)
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        total = own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
        if self.live_children:
            total += self._live_descendant_ticks(os.getpid(), depth=0) / self._tick
        return total

    def _live_descendant_ticks(self, pid: int, depth: int) -> int:
        """utime+stime+cutime+cstime (clock ticks) of all live descendants of `pid`."""
        if depth > 32:  # a guard against pathological trees; real trees are shallow
            return 0
        ticks = 0
        for child in self._children(pid):
            stat = self._stat_ticks(child)
            if stat is None:
                continue  # exited between listing and reading
            ticks += stat + self._live_descendant_ticks(child, depth + 1)
        return ticks

    def _children(self, pid: int) -> list[int]:
        kids: list[int] = []
        for path in glob.glob(f"{self._proc}/{pid}/task/*/children"):
            try:
                with open(path) as fh:
                    kids.extend(int(tok) for tok in fh.read().split())
            except OSError:
                continue
        return kids

    def _stat_ticks(self, pid: int) -> int | None:
        try:
            with open(f"{self._proc}/{pid}/stat") as fh:
                text = fh.read()
        except OSError:
            return None
        # the command name (field 2) may contain spaces and parentheses: split after the last ')'
        fields = text[text.rfind(")") + 2 :].split()
        # fields[0] is field 3 (state); utime, stime, cutime, cstime are fields 14-17
        try:
            return sum(int(fields[i]) for i in (11, 12, 13, 14))
        except (IndexError, ValueError):
            return None
