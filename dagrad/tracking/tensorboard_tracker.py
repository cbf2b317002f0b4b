"""TensorBoard event files in <run folder>/tensorboard, written with torch's SummaryWriter.

Scalars are tagged `group/name` (accuracy/ood_acc, energy/cum_J, gradsamp/gradsamp_step_norm, ...) at
the record's global step. On every start the writer purges what earlier sessions wrote and replays the
epochs recorded so far, so after a resume the event files show exactly the records, with no epoch that
the checkpoint lost counted twice."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from dagrad.tracking.packages import missing_package


class TensorBoardTracker:
    name = "tensorboard"

    def __init__(self, folder: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch raises ImportError naming tensorboard when it is absent
            raise missing_package("tracking.tensorboard", "tensorboard") from None
        self._writer_class, self.folder, self.writer = SummaryWriter, folder, None

    def open(self, header: dict, recorded: list[tuple[int, dict[str, dict[str, Any]]]]) -> None:
        self.writer = self._writer_class(str(self.folder), purge_step=0)
        config = yaml.safe_dump(header.get("config", {}), sort_keys=True)
        self.writer.add_text("config", "    " + config.replace("\n", "\n    "), 0)
        for step, values in recorded:
            self._scalars(step, values)
        self.writer.flush()

    def _scalars(self, step: int, values: dict[str, dict[str, Any]]) -> None:
        for group, named in values.items():
            if group == "text":
                continue
            for name, value in named.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(f"{group}/{name}", value, step)

    def epoch(self, step: int, values: dict[str, dict[str, Any]]) -> None:
        self._scalars(step, values)
        self.writer.flush()  # an interrupted run keeps every epoch it recorded

    def finish(self, step: int, values: dict[str, float]) -> None:
        self._scalars(step, {"final": values})
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
