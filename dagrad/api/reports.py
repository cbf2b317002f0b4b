"""`dagrad.report`: the tables and plots `dagrad report` writes, as objects (DataFrames and Figures)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from dagrad.analysis import report as tables
from dagrad.analysis import runs as records_runs
from dagrad.errors import ConfigError, DataError
from dagrad.notices import warnings_once

FORMATS = ("md", "latex", "csv")


@dataclass
class Report:
    """What `dagrad report` shows, as objects.

    - `tables`: dataset -> the table as the CLI prints it (one row per algorithm x GradSamp setting,
      cells as printed: "mean ± SE"); `notes`: dataset -> the lines under it (comparisons with the
      equal-energy control);
    - `summary`: the numbers behind the tables (one row per configuration); `selected`: the model chosen
      per (configuration, test environment, trial seed); `tidy`: one row per table figure;
    - `text`: the report in `format` (md, latex or csv); `figures`: name -> matplotlib Figure
      (`<dataset>-pareto`, `<dataset>-curves`), the plots `dagrad report` saves."""

    selection: str
    format: str
    selected: pd.DataFrame
    summary: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    notes: dict[str, list[str]]
    text: str
    figures: dict[str, Any] = field(repr=False)

    @property
    def tidy(self) -> pd.DataFrame:
        return tables.tidy(self.summary)

    def _repr_markdown_(self) -> str:
        return tables.render_markdown(self.summary, self.selection, tables.numerics_line(self.selected))


def _runs(source: Any) -> list[records_runs.Run]:
    """Record-file runs from a folder, a list of API runs, analysis runs, folders or record files."""
    if isinstance(source, (str, Path)):
        if not Path(source).exists():
            raise DataError(f"no folder or record file at {source}")
        return records_runs.load_runs(source)
    items = list(source) if isinstance(source, Iterable) else [source]
    out = []
    for item in items:
        records = getattr(item, "records", item)  # an API Run wraps the analysis pipeline's Run
        out.append(records if isinstance(records, records_runs.Run) else records_runs.load_run(item))
    return out


def report(runs: Any, *, selection: str = "training_domain", format: str = "md") -> Report:
    """The report of the runs below a folder (or of a list of runs): tables, text and figures."""
    from dagrad.analysis.frames import epochs_frame
    from dagrad.analysis.plots import curves_figure, pareto_figure
    from dagrad.analysis.selection import METHODS

    if selection not in METHODS:
        raise ConfigError(f"selection {selection!r} is unknown; choose one of: {', '.join(METHODS)}")
    if format not in FORMATS:
        raise ConfigError(f"format {format!r} is unknown; choose one of: {', '.join(FORMATS)}")
    with warnings_once():
        loaded = _runs(runs)
        selected, summary = tables.build(loaded, selection)
        if summary.empty:
            where = runs if isinstance(runs, (str, Path)) else "the runs given"
            raise DataError(f"{where}: no finished single-test-environment runs to report with {selection} selection")
        tabs, notes = {}, {}
        for dataset in summary["dataset"].unique():
            header, rows, lines = tables.table_cells(summary, dataset)
            tabs[dataset], notes[dataset] = pd.DataFrame(rows, columns=header), lines
        if format == "csv":
            text = tables.tidy(summary).to_csv(index=False)
        else:
            render = tables.render_markdown if format == "md" else tables.render_latex
            text = render(summary, selection, tables.numerics_line(selected))
        epochs = epochs_frame(loaded)
        figures = {}
        for dataset in summary["dataset"].unique():
            figures[f"{dataset}-pareto"] = pareto_figure(summary, dataset)
            figures[f"{dataset}-curves"] = curves_figure(epochs, selected, dataset)
    return Report(selection, format, selected, summary, tabs, notes, text, figures)
