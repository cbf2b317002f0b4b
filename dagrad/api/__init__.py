"""dagrad's Python API, for notebooks and scripts (also reachable as `dagrad.train`, `dagrad.load_run`, ...).

    import dagrad
    run = dagrad.train("experiments/pacs", out="runs/pacs-erm", algorithm__name="coral")
    run.epochs            # one row per epoch (DataFrame)
    run.summary           # OOD accuracy, validation accuracy, energy by phase
    run.plot()            # accuracy and energy over the epochs (Figure)
    rep = dagrad.report("runs/digits-sweep")   # rep.tables, rep.figures, rep.text
    st = dagrad.study("runs/study-digits")     # st.cells: GradSamp against its skip control, cell by cell
    model, transform = dagrad.load_model("runs/pacs-erm", "best")   # a kept model, eval mode

Bad input raises a `DagradError` subclass carrying the CLI's one-line message; nothing calls `sys.exit`.
Each distinct warning is shown once, as in the CLI."""

from __future__ import annotations

from dagrad.api.configs import ConfigLike, check_config
from dagrad.api.reports import Report, StudyReport, report, study
from dagrad.api.runs import Run, evaluate, load_run, load_runs, train
from dagrad.api.sweeps import Sweep, sweep
from dagrad.models.loading import load_model
from dagrad.utils.errors import CheckpointError, ConfigError, DagradError, DataError, RecordsError

__all__ = ["train", "evaluate", "load_model", "load_run", "load_runs", "sweep", "report", "study", "check_config", "Run", "Sweep", "Report",
           "StudyReport", "ConfigLike", "DagradError", "ConfigError", "DataError", "CheckpointError", "RecordsError"]
