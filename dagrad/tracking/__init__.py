"""Optional mirrors of a run's records for the trackers researchers already use: TensorBoard and
Weights & Biases (`tracking.tensorboard: true`, `tracking.wandb: {project: ..., mode: offline}`).

Every number a tracker shows comes from the record line the engine has just written, through
`dagrad.records.values` (the same code that fills `Run.epochs` and the report), so the records stay the
source of truth. Only rank 0 writes. A tracker that fails mid-run is switched off with a warning; the
training and its records go on. Enabling one without its package installed is a ConfigError naming the
extra to install, raised before anything is written.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Optional, Protocol

from dagrad.config.schema import TrackingConfig
from dagrad.records.values import EpochValues, summary_values

class Tracker(Protocol):
    """One tracker: opened with the run's header and the epochs already recorded, then fed each epoch."""

    name: str

    def open(self, header: dict, recorded: list[tuple[int, dict[str, dict[str, Any]]]]) -> None: ...

    def epoch(self, step: int, values: dict[str, dict[str, Any]]) -> None: ...

    def finish(self, step: int, values: dict[str, float]) -> None: ...

    def close(self) -> None: ...


def build_trackers(settings: TrackingConfig, folder: Path) -> list[Tracker]:
    """The trackers `settings` enables, their packages imported (nothing is written yet)."""
    trackers: list[Tracker] = []
    if settings.tensorboard:
        from dagrad.tracking.tensorboard_tracker import TensorBoardTracker

        trackers.append(TensorBoardTracker(folder / "tensorboard"))
    if settings.wandb.project:
        from dagrad.tracking.wandb_tracker import WandbTracker

        trackers.append(WandbTracker(folder, settings.wandb))
    return trackers


class Trackers:
    """The run's trackers, fed from its record file: `start(records)` after the header is written
    (replaying epochs already recorded when a run resumes), then every line the run appends."""

    def __init__(self, settings: TrackingConfig, folder: str | Path, rank: int = 0):
        self.trackers = build_trackers(settings, Path(folder)) if rank == 0 else []
        self.values: Optional[EpochValues] = None
        self.header: dict = {}
        self.last_step = 0

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def start(self, records: Any) -> None:
        """Open every tracker on a RecordFile whose first line is the header, and follow its appends."""
        if not self.trackers:
            return
        self.header = records.lines[0]
        data = self.header.get("data", {})
        self.values = EpochValues(data.get("test_envs", []), data.get("train_envs", []))
        recorded = [(line["step"], self.values.values(line)) for line in records.lines if line["type"] == "epoch"]
        self.last_step = recorded[-1][0] if recorded else 0
        self._each("open", self.header, recorded)
        records.observers.append(self.observe)

    def observe(self, line: dict, lines: list[dict]) -> None:
        """A record line was appended: an epoch's numbers, or the summary's reported model."""
        if not self.trackers or self.values is None:
            return
        if line["type"] == "epoch":
            self.last_step = line["step"]
            self._each("epoch", line["step"], self.values.values(line))
        elif line["type"] == "summary":
            data = self.header.get("data", {})
            self._each("finish", self.last_step, summary_values(line, data.get("test_envs", []),
                                                                data.get("train_envs", [])))

    def close(self) -> None:
        self._each("close")
        self.trackers = []

    def _each(self, method: str, *args: Any) -> None:
        for tracker in list(self.trackers):
            try:
                getattr(tracker, method)(*args)
            except Exception as exc:  # noqa: BLE001 - a tracker never stops the training or its records
                self.trackers.remove(tracker)
                warnings.warn(f"tracking: {tracker.name} failed ({type(exc).__name__}: {exc}); it is off for the "
                              "rest of this run, the records are unaffected", RuntimeWarning, stacklevel=2)
                if method != "close":
                    try:
                        tracker.close()
                    except Exception:  # noqa: BLE001
                        pass
