"""Weights & Biases, offline by default, files in <run folder>/wandb (`wandb sync` uploads them).

The W&B run id is the dagrad run id plus a hash of the folder, so resuming a folder continues its W&B
run. The first time W&B is switched on for a folder, the epochs already recorded are logged too; when a
W&B run already exists, logging goes on from the next epoch (W&B refuses steps it has already seen)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from dagrad.config.schema import WandbConfig, stable_hash
from dagrad.tracking.packages import missing_package


def _flat(values: dict[str, dict[str, Any]]) -> dict[str, float]:
    return {f"{group}/{name}": value for group, named in values.items() if group != "text"
            for name, value in named.items() if isinstance(value, (int, float)) and math.isfinite(value)}


class WandbTracker:
    name = "wandb"

    def __init__(self, folder: Path, settings: WandbConfig):
        try:
            import wandb
        except ImportError:
            raise missing_package("tracking.wandb", "wandb") from None
        self.wandb, self.folder, self.settings, self.run = wandb, folder, settings, None

    def open(self, header: dict, recorded: list[tuple[int, dict[str, dict[str, Any]]]]) -> None:
        fresh = not (self.folder / "wandb").exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        s = self.settings
        self.run = self.wandb.init(
            project=s.project, entity=s.entity, mode=s.mode, dir=str(self.folder), name=self.folder.name,
            id=f"{header.get('run_id', 'run')}-{stable_hash(str(self.folder.resolve()), 8)}", resume="allow",
            config=header.get("config", {}), job_type="train",
            settings=self.wandb.Settings(console="off", quiet=True, disable_git=True))
        if fresh:
            for step, values in recorded:
                self.run.log(_flat(values), step=step)

    def epoch(self, step: int, values: dict[str, dict[str, Any]]) -> None:
        self.run.log(_flat(values), step=step)

    def finish(self, step: int, values: dict[str, float]) -> None:
        self.run.summary.update({f"final/{k}": v for k, v in values.items() if math.isfinite(v)})

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
