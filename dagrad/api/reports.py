"""`dagrad.report` and `dagrad.study`: the tables and plots `dagrad report` (and `--study`) writes, as objects
(DataFrames and Figures)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import pandas as pd

from dagrad.analysis import report as analysis_report
from dagrad.analysis import tables
from dagrad.analysis import runs as records_runs
from dagrad.api import arguments
from dagrad.utils.errors import ConfigError, DataError
from dagrad.utils.notices import warnings_once

FORMATS = ("md", "latex", "csv")


@dataclass
class Report:
    """What `dagrad report` shows, as objects.

    - `results`: selection method -> (selected models, summary), for every method that selected anything
      (training-domain validation, leave-one-domain-out where pair runs exist, the test-domain oracle);
    - `selection`: the first of those methods; `selected`, `summary`, `tables` and `notes` are its: `tables`
      maps a dataset to the table as the CLI prints it (one row per algorithm x GradSamp setting, cells as
      printed: "mean ± SE"), `notes` the lines under it (comparisons with the equal-energy control);
    - `wilds`: the WILDS-protocol summary, when runs used it; `tidy`: one row per table figure;
    - `text`: the report in `format` (md, latex or csv), exactly as `dagrad report` writes it; `figures`:
      name -> matplotlib Figure (`<dataset>-pareto`, `<dataset>-curves`), the plots `dagrad report` saves."""

    selection: str
    format: str
    results: dict[str, tuple[pd.DataFrame, pd.DataFrame]]
    wilds: Optional[pd.DataFrame]
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
        return analysis_report.render_report("md", self.results, self.wilds, []) if self.format != "md" else self.text


def _runs(source: Any) -> list[records_runs.RecordedRun]:
    """Record-file runs from a folder, a list of API runs, analysis runs, folders or record files."""
    source = arguments.runs_source(source)
    if isinstance(source, (str, Path)):
        if not Path(source).exists():
            raise DataError(f"no folder or record file at {source}")
        return records_runs.read_runs(source)
    items = list(source) if isinstance(source, Iterable) else [source]
    out = []
    for item in items:
        records = getattr(item, "records", item)  # an API Run wraps the analysis pipeline's Run
        out.append(records if isinstance(records, records_runs.RecordedRun) else records_runs.read_run(item))
    return out


def report(runs: Any, *, selection: Optional[str | Sequence[str]] = None, format: str = "md",
           se: str = "sample") -> Report:
    """The report of the runs below a folder (or of a list of runs): every selection method's tables (or
    those named in `selection`), the text `dagrad report` writes, and the figures. `se`: "sample" (ddof 1,
    dagrad's default) or "domainbed" (ddof 0, as DomainBed's collect_results)."""
    from dagrad.analysis.frames import epochs_frame
    from dagrad.analysis.plots import curves_figure, pareto_figure, precision_labels

    from dagrad.analysis.tables import SE_DDOF
    from dagrad.analysis.selection import METHODS

    selection = arguments.names(selection, "selection")
    for method in selection or ():
        arguments.choice(method, METHODS, "selection")
    arguments.choice(se, SE_DDOF, "se")
    if format not in FORMATS:
        raise ConfigError(f"format {format!r} is unknown; choose one of: {', '.join(FORMATS)}")
    with warnings_once():
        loaded = _runs(runs)
        results, wilds_summary, skipped, ddof = analysis_report.report_results(loaded, selection, se)
        if not results:
            where = runs if isinstance(runs, (str, Path)) else "the runs given"
            raise DataError(f"{where}: no finished single-test-environment runs to report with "
                            f"{selection or 'any'} selection")
        method = next(iter(results))
        selected, summary = results[method]
        tabs, notes = {}, {}
        for dataset in summary["dataset"].unique():
            header, rows, lines = tables.table_cells(summary, dataset)
            tabs[dataset], notes[dataset] = pd.DataFrame(rows, columns=header), lines
        if format == "csv":
            text = analysis_report.csv_tables(results, ddof)[1].to_csv(index=False)
        else:
            text = analysis_report.render_report(format, results, wilds_summary, skipped)
        plotted = "training_domain" if "training_domain" in results else method
        epochs = epochs_frame(loaded)
        figures = {}
        for dataset in results[plotted][1]["dataset"].unique():
            figures[f"{dataset}-pareto"] = pareto_figure(results[plotted][1], dataset,
                                                         precision_labels(results[plotted][0]))
            figures[f"{dataset}-curves"] = curves_figure(epochs, results[plotted][0], dataset)
    return Report(method, format, results, wilds_summary, selected, summary, tabs, notes, text, figures)


@dataclass
class StudyReport:
    """What `dagrad report --study` shows, as objects: `cells` (one row per algorithm x reading x schedule:
    the paired differences against the skip control and full training, t, p, Holm-adjusted p, verdict,
    savings), `references` (full training and the skip controls), `tests` (cells the Holm correction spans),
    `text` (study.md / .tex / .csv as written) and `figures` (`<dataset>-study` heatmaps)."""

    selection: str
    alpha: float
    tests: int
    cells: pd.DataFrame
    references: pd.DataFrame
    text: str
    figures: dict[str, Any] = field(repr=False)

    def _repr_markdown_(self) -> str:
        return self.text


def study(runs: Any, *, selection: str = "training_domain", se: str = "sample", alpha: float = 0.05,
          format: str = "md") -> StudyReport:
    """The GradSamp study of the runs below a folder (or of a list of runs): every GradSamp configuration
    tested against its equal-energy skip control (two-sided paired t-test over trial seeds at `alpha`, Holm-
    corrected over all cells) under one model `selection`, as `dagrad report RUNS --study` writes it."""
    from dagrad.analysis import heatmap, study_document
    from dagrad.analysis.study import build_study

    from dagrad.analysis.tables import SE_DDOF
    from dagrad.analysis.selection import METHODS

    alpha = arguments.level(alpha, "alpha")
    arguments.choice(selection, METHODS, "selection")
    arguments.choice(se, SE_DDOF, "se")
    if format not in FORMATS:
        raise ConfigError(f"format {format!r} is unknown; choose one of: {', '.join(FORMATS)}")
    with warnings_once():
        built = build_study(_runs(runs), selection, se, alpha)
        figures = {f"{d}-study": heatmap.heatmap_figure(built.cells, d, built.alpha, built.tests)
                   for d in dict.fromkeys(built.cells.dataset)}
        text = study_document.render_study(built, format, heatmaps=False)
    return StudyReport(built.selection, built.alpha, built.tests, built.cells, built.references, text, figures)
