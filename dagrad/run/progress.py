"""What a run prints while it trains, to stderr: its folder when it starts, one plain line per epoch,
and progress bars only on a terminal.

A log file (a sweep job's log.txt, `dagrad train ... 2> log`) gets the plain lines alone, never the
bars' carriage returns and escape codes; `--quiet` drops the bars and keeps the lines; the Python API's
`progress=False` prints nothing. Epochs are numbered from 0, as in configs, schedules, records and
plots; the parenthesis counts them. A line reads

    epoch 3 (4 of 10) sampled: train 0.4 s, eval 1.1 s, energy 12.5 J (estimated:cpu-time), OOD acc 41.2 %, val acc 63.0 %

where `energy` is the epoch's train + eval energy.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, Iterable, Optional, TextIO, Union

from tqdm.auto import tqdm

from dagrad.records.metrics import env_mean


class RunProgress:
    """Start line, epoch lines and (on a terminal) bars for one run."""

    def __init__(self, lines: bool = True, bars: bool = True, stream: Optional[TextIO] = None):
        self.stream = stream or sys.stderr
        self.lines = lines
        self.bars = bars and lines and _is_terminal(self.stream)
        self._bar: Optional[tqdm] = None
        self.epochs = 0
        self.test_envs: list[int] = []
        self.train_envs: list[int] = []

    @classmethod
    def of(cls, progress: Union[bool, str, "RunProgress"]) -> "RunProgress":
        """True: lines and, on a terminal, bars; "lines": lines only (--quiet); False: silent."""
        if isinstance(progress, RunProgress):
            return progress
        if progress == "lines":
            return cls(lines=True, bars=False)
        return cls(lines=bool(progress), bars=bool(progress))

    def start(self, folder: Path, what: str, epochs: int, start_epoch: int, test_envs: list[int],
              train_envs: list[int]) -> None:
        self.epochs, self.test_envs, self.train_envs = epochs, list(test_envs), list(train_envs)
        where = f"resuming at epoch {start_epoch} ({start_epoch} of {epochs} done)" if start_epoch else \
            f"{epochs} epoch{'' if epochs == 1 else 's'} (0 to {epochs - 1})"
        self._write(f"run {folder}: {what}, {where}")

    def over_epochs(self, epochs: range) -> Iterable[int]:
        if not self.bars:
            return epochs
        self._bar = tqdm(epochs, desc="epochs", unit="epoch", file=self.stream)
        return self._bar

    def over_steps(self, steps: Iterable[Any], total: int, epoch: int) -> Iterable[Any]:
        if not self.bars:
            return steps
        return tqdm(steps, total=total, desc=f"epoch {epoch}", unit="step", leave=False, file=self.stream)

    def epoch_done(self, record: dict) -> None:
        """One line from an epoch's record (the same numbers the record file keeps)."""
        metrics = record.get("metrics") or {}
        ood, val = env_mean(metrics, self.test_envs, "in"), env_mean(metrics, self.train_envs, "out")
        if self._bar is not None:
            self._bar.set_postfix(kind=record.get("kind"), ood=f"{ood:.3f}")
        self._write(epoch_line(record, self.epochs, ood, val))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _write(self, line: str) -> None:
        if not self.lines:
            return
        if self.bars:
            tqdm.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)


def epoch_line(record: dict, epochs: int, ood: float, val: float) -> str:
    energy = record.get("energy") or {}
    train, evaluation = energy.get("train") or {}, energy.get("eval") or {}
    kind = record.get("kind", "train")
    if record.get("fallback"):
        kind += f" -> {record['fallback']}"
    epoch = record.get("epoch", 0)
    return (f"epoch {epoch} ({epoch + 1} of {epochs}) {kind}: train {train.get('seconds', 0.0):.1f} s, "
            f"eval {evaluation.get('seconds', 0.0):.1f} s, energy {_joules(train, evaluation)}, "
            f"OOD acc {_percent(ood)}, val acc {_percent(val)}")


def _joules(*readings: dict) -> str:
    known = [r["joules"] for r in readings if r.get("joules") is not None]
    sources = sorted({s for r in readings for s in r.get("sources", [])})
    if not known:
        return "unknown"
    partial = "" if len(known) == len(readings) else ", partly unreadable"
    return f"{sum(known):.1f} J ({', '.join(sources)}{partial})"


def _percent(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{100 * value:.1f} %"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


__all__ = ["RunProgress", "epoch_line"]
