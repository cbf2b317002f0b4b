"""The engine's one hook for what a run writes about its models besides records and checkpoint: the kept
models (`checkpoints.keep`) and, when asked for, per-example predictions (`eval.save_predictions`)."""

from __future__ import annotations

from typing import Any, Optional

from torch import nn

from dagrad.models.kept import KeptModels
from dagrad.models.predictions import PredictionWriter


class RunOutputs:
    """Fed by the engine: after each epoch's record, after each checkpoint, and at the run's end."""

    def __init__(self, trainer: Any):
        data, main = trainer.data, trainer.dist.main
        facts = {"dataset": trainer.cfg.data.name, "input_shape": list(data.input_shape),
                 "num_classes": int(data.num_classes), "class_names": list(data.suite.class_names),
                 "n_train_envs": len(data.train_envs), "environments": list(data.suite.env_names)}
        self.kept = KeptModels(trainer.out, trainer.cfg.checkpoints.keep, trainer.hash, facts, data.train_envs,
                               write=main)
        self.predictions: Optional[PredictionWriter] = None
        if trainer.cfg.eval.save_predictions and main:
            self.predictions = PredictionWriter(trainer.out, data, trainer.device, trainer.numerics)

    def after_epoch(self, epoch: int, metrics: dict, module: nn.Module) -> None:
        """After the epoch's record: keep its model where asked, write its predictions where asked."""
        self.kept.after_epoch(epoch, metrics, module)
        if self.predictions is not None:
            self.predictions.after_epoch(epoch, module)

    def after_checkpoint(self) -> None:
        self.kept.commit()

    def state_dict(self) -> dict:
        return self.kept.state_dict()

    def load_state_dict(self, state: Optional[dict]) -> None:
        self.kept.load_state_dict(state)

    def finish(self, averaged: Optional[nn.Module]) -> dict:
        """The kept models by name (relative paths), for the summary line."""
        return self.kept.finish(averaged)
