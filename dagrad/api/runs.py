"""`Run`: one run read from its record file, for notebooks; `train`, `load_run`, `load_runs`.

Everything a `Run` shows is computed from its records by the same code as the CLI's summary line
(`analysis.runs.RecordedRun.summary_figures`), the report and the trackers (`record_values.EpochValues`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import pandas as pd

from dagrad.analysis import runs as records_runs
from dagrad.api import arguments
from dagrad.api.configs import ConfigLike, consent, experiment, experiment_to_resume
from dagrad.utils.errors import ConfigError, DagradError, RecordsError
from dagrad.utils.notices import warnings_once
from dagrad.records.values import EpochValues


class Run:
    """One run, finished or still running, as its records say.

    - `folder`, `path` (the record file), `header`, `config` (the config as given, plain data), `run_id`;
    - `epochs`: a DataFrame, one row per epoch: kind, updates, accuracy and loss per split (`env0_in_acc`,
      ...), `ood_acc` / `val_acc`, seconds and joules per phase with their sources, cumulative joules,
      FLOPs, GradSamp's step statistics (`gradsamp_*`);
    - `summary`: what `dagrad train` prints: OOD and validation accuracy of the reported model, energy by
      phase with sources, updates, seconds;
    - `plot()`: accuracy and energy over the epochs, as a matplotlib Figure."""

    def __init__(self, records: records_runs.RecordedRun):
        self.records = records  # the analysis pipeline's view of the same record file
        self._epochs: Optional[pd.DataFrame] = None

    @property
    def path(self) -> Path:
        return self.records.path

    @property
    def folder(self) -> Path:
        return self.records.path.parent

    @property
    def header(self) -> dict:
        return self.records.header

    @property
    def config(self) -> dict:
        return self.records.config

    @property
    def run_id(self) -> str:
        return self.records.run_id

    @property
    def complete(self) -> bool:
        return self.records.complete

    @property
    def epochs(self) -> pd.DataFrame:
        if self._epochs is None:
            values = EpochValues(self.records.test_envs, self.records.train_envs)
            self._epochs = pd.DataFrame([values.row(r) for r in self.records.epochs])
        return self._epochs

    @property
    def summary(self) -> dict[str, Any]:
        return self.records.summary_figures()

    def plot(self):
        """Accuracy and cumulative energy over the epochs (a matplotlib Figure)."""
        from dagrad.analysis.plots import run_figure

        if self.epochs.empty:
            raise RecordsError(f"{self.path}: no epoch recorded yet, nothing to plot")
        data = self.config.get("data", {})
        algorithm = self.config.get("algorithm", {}).get("name", "?")
        sampler = self.config.get("gradsamp", {}).get("sampler", "none")
        title = (f"{self.folder.name}: {algorithm} on {data.get('name', '?')}, test envs "
                 f"{list(self.records.test_envs)}, GradSamp {sampler}")
        return run_figure(self.epochs, title)

    def model(self, which: "str | int" = "best", device: str = "cpu", plugins: Sequence[str] = ()):
        """A kept model of this run ("last", "best", "swad" or an epoch number) in eval mode with its evaluation
        transform (a dagrad.models.LoadedModel; unpacks as `model, transform`)."""
        from dagrad.models import load_model

        return load_model(self.folder, which, device=device, plugins=plugins)

    def reload(self) -> "Run":
        """The same run read again (a running run has more epochs by now)."""
        return load_run(self.path)

    def __repr__(self) -> str:
        state = "finished" if self.complete else "running or stopped"
        epochs = self.config.get("epochs", "?")
        ood = self.summary["ood_acc"] if self.records.epochs else float("nan")
        model = " (averaged model)" if self.summary["reported"] == "averaged" else ""
        return (f"Run({str(self.folder)!r}, {len(self.records.epochs)}/{epochs} epochs, {state}, "
                f"OOD accuracy{model} {100 * ood:.1f} %)")


def evaluate(target: str | Path, data: str, envs: Optional[Sequence[str]] = None,
             which: Optional[str | int] = None, device: str = "cpu", out: Optional[str | Path] = None,
             selection: str = "training_domain", plugins: Sequence[str] = ()) -> pd.DataFrame:
    """`dagrad evaluate` from Python: a run's kept model `which` (default best), or each report cell's
    selected model of a sweep folder, scored on `data` (a dataset name or image folder tree); one row per
    model and environment (acc, loss, ece, per_class_acc, confusion, energy, ...). Also writes the JSONL."""
    from dagrad.analysis.model_scores import evaluate_models

    with warnings_once():
        lines, _ = evaluate_models(target, data, envs, which, device, out, None, selection, plugins)
    return pd.DataFrame([line for line in lines if line["type"] == "evaluation"])


def load_run(folder: str | Path) -> Run:
    """The run in `folder` (or a record file), finished or still running."""
    folder = arguments.path(folder, "folder")
    with warnings_once():
        return Run(records_runs.read_run(folder))


def load_runs(folder: str | Path | Iterable[str | Path]) -> list[Run]:
    """Every run below `folder` (a run or sweep folder), in path order; or the given folders/record files."""
    folder = arguments.runs_source(folder, "folder")
    if isinstance(folder, (str, Path)) and not Path(folder).exists():
        raise RecordsError(f"no folder or record file at {folder}")
    with warnings_once():
        return [Run(r) for r in records_runs.read_runs(folder)]


def train(config: ConfigLike = None, *, out: Optional[str | Path] = None, resume: bool = False,
          restart: bool = False, progress: bool = True, plugins: Sequence[str] = (), allow_plugins: bool = False,
          **overrides: Any) -> Run:
    """Train one experiment (or continue one) and return its run.

    `config`: a path or shipped name, a list of them, a dict, an ExperimentConfig; None: the defaults,
    or with `resume=True` the config recorded in `out`. Overrides: `algorithm__name="coral"`,
    `**{"gradsamp.sampler": "tensor"}` or `gradsamp={"sampler": "tensor"}`. `out`: the run folder
    (default runs/<name>-<run id>); `restart` moves an unusable attempt there aside first. `plugins` names the
    plugin modules or files you consent to import (they run code), `allow_plugins` consents to every plugin
    the config names. A bad key or value raises the ConfigError the CLI prints."""
    from dagrad.federated.route import train as train_engine  # federated configs run on Flower
    from dagrad.config.experiment import default_run_folder

    out = arguments.path(out, "out", optional=True)
    agreed = consent(plugins, allow_plugins)
    with warnings_once():
        if resume:
            if out is None:
                raise ConfigError("resume=True needs out= (the folder of the run to continue)")
            exp = experiment_to_resume(out, config, overrides, agreed)
        else:
            exp = experiment(config, overrides, agreed)
        folder = Path(out) if out is not None else default_run_folder(exp)
        try:
            path = train_engine(exp, folder, resume=resume, restart=restart, progress=progress)
        except DagradError as exc:
            raise arguments.in_api_words(exc) from None
        return Run(records_runs.read_run(path))
