"""The whole report, as DomainBed's collect_results prints it: for every model-selection method
(training-domain validation, leave-one-domain-out where the pair runs exist, the test-domain oracle) one
table per dataset (rows = algorithm x setting, columns = each test environment and Avg) and a compact
"all datasets" table (each dataset's Avg and their mean) closing that method's section; then, for runs
under `data.protocol: wilds`, WILDS's own metrics and selection. Markdown, LaTeX or CSV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from dagrad.analysis import tables
from dagrad.analysis.federated import add_traffic, has_traffic, traffic_markdown
from dagrad.analysis.tables import (SE_DDOF, markdown_table, models_table, numerics_line, pm, se_words, summarize,
                                    tex, tidy, with_run_facts)
from dagrad.analysis.runs import RecordedRun, read_runs
from dagrad.analysis.selection import DESCRIPTIONS, METHODS, select
from dagrad.analysis import wilds
from dagrad.analysis.wilds import select_wilds, summarize_wilds
from dagrad.utils.atomic import make_folders, remove_empty_folders, storage_error, write_text_atomic
from dagrad.utils.errors import ConfigError, DataError, StorageError

#: what `dagrad report` prints without --selection, in collect_results' order
DEFAULT_METHODS = ("training_domain", "leave_one_out", "oracle")
TITLES = {"training_domain": "Training-domain validation", "leave_one_out": "Leave-one-domain-out cross-validation",
          "oracle": "Test-domain validation (oracle)", "last": "Last checkpoint, default hparams (no selection)"}


COMPACT_NOTE = ("All datasets: each dataset's Avg (mean ± SE over trial seeds of the mean over its test "
                "environments); Avg = their mean, shown only when every dataset has one (DomainBed's Averages table).")

MODELS_NOTE = ("Selected models: the kept model file each cell's selected run names (`dagrad.load_model`, "
               "`dagrad evaluate`, `predict` and `export` read it).")


def compact_cells(summary: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """DomainBed's "Averages" table: one row per (algorithm, setting), one column per dataset holding its
    Avg (mean ± SE over trial seeds of the per-trial mean over test environments), and the mean of those
    over the datasets (only when every dataset has one; else "–")."""
    datasets = list(summary["dataset"].unique())
    header = ["algorithm", "setting", *datasets, "Avg"]
    rows = []
    for (algorithm, setting), g in summary.groupby(["algorithm", "setting"], sort=False):
        by = {d["dataset"]: d for d in g.to_dict("records")}
        cells = [pm(by[d]["acc:Avg"], by[d]["se:Avg"]) if d in by else "–" for d in datasets]
        means = [by[d]["acc:Avg"] if d in by else float("nan") for d in datasets]
        overall = f"{np.mean(means):.1f}" if all(np.isfinite(means)) else "–"
        rows.append([algorithm, setting, *cells, overall])
    return header, rows


def expected_envs(runs: list[RecordedRun]) -> dict[str, dict[int, str]]:
    """dataset -> {test environment: name} over the finished single-test-environment runs: the columns a
    table should have even where a selection found nothing there."""
    expected: dict[str, dict[int, str]] = {}
    for run in runs:
        if run.complete and len(run.test_envs) == 1 and not wilds.is_wilds(run):
            t = run.test_envs[0]
            expected.setdefault(run.dataset, {})[t] = run.environments[t] if t < len(run.environments) else str(t)
    return expected


def method_results(runs: list[RecordedRun], methods: Sequence[str], ddof: int
                   ) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """method -> (selected, summary) for each method that selects anything (LOO needs pair runs)."""
    expected = expected_envs(runs)
    out = {}
    for method in methods:
        selected = with_run_facts(select(runs, method), runs)
        if len(selected):
            out[method] = (selected, add_traffic(summarize(selected, ddof, expected), selected, runs, ddof))
    return out


def report_markdown(results: dict, wilds_summary: Optional[pd.DataFrame], skipped: list[str]) -> str:
    out = []
    for method, (selected, summary) in results.items():
        table = tables.tables_markdown(summary, method, numerics_line(selected), level="###").rstrip()
        out += [f"## {TITLES[method]}", "", table, "",
                *(traffic_markdown(summary) if has_traffic(summary) else []),
                "### All datasets", "", *markdown_table(*compact_cells(summary)), "", f"_{COMPACT_NOTE}_", "",
                "### Selected models", "", *markdown_table(*models_table(selected)), "", f"_{MODELS_NOTE}_", ""]
    out += [f"_{TITLES[m]}: {_why_empty(m)}._" for m in skipped if results]
    if wilds_summary is not None and len(wilds_summary):
        out += ["", "## WILDS protocol", ""]
        for dataset in wilds_summary["dataset"].unique():
            out += [f"### {dataset}", "", *markdown_table(*wilds.wilds_table_cells(wilds_summary, dataset)), ""]
        out.append(f"_{wilds.footer(wilds_summary)}_")
    return "\n".join(out).strip() + "\n"


def _why_empty(method: str) -> str:
    if method == "leave_one_out":
        return ("no table: it needs the runs holding out each pair of environments (a sweep's "
                "`leave_one_out_envs`)")
    return "no finished single-test-environment runs to select from"


def _latex_table(caption: str, header: list[str], rows: list[list[str]], notes: Sequence[str] = ()) -> list[str]:
    lines = [r"\begin{table}[t]", r"\centering\small", rf"\caption{{{tex(caption)}}}",
             r"\begin{tabular}{ll" + "c" * (len(header) - 2) + "}", r"\toprule",
             " & ".join(tex(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(tex(c) for c in r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}"] + [r"\par\footnotesize " + tex(n) for n in notes]
    return lines + [r"\end{table}", ""]


def report_latex(results: dict, wilds_summary: Optional[pd.DataFrame], skipped: list[str]) -> str:
    """booktabs tables, one \\subsection per selection method; needs \\usepackage{booktabs}."""
    out = []
    for method, (selected, summary) in results.items():
        out += [rf"\subsection{{Model selection: {tex(TITLES[method])}}}",
                tables.tables_latex(summary, method, numerics_line(selected))]
        out += _latex_table(f"All datasets ({TITLES[method]})", *compact_cells(summary), [COMPACT_NOTE])
        out += _latex_table(f"Selected models ({TITLES[method]})", *models_table(selected), [MODELS_NOTE])
    out += [rf"% {TITLES[m]}: {_why_empty(m)}" for m in skipped if results]
    if wilds_summary is not None and len(wilds_summary):
        out.append(r"\subsection{WILDS protocol}")
        for dataset in wilds_summary["dataset"].unique():
            out += _latex_table(f"{dataset} (WILDS)", *wilds.wilds_table_cells(wilds_summary, dataset),
                                [wilds.footer(wilds_summary)])
    return "\n".join(out)


def _methods(selection: Optional[str | Sequence[str]]) -> list[str]:
    methods = list(DEFAULT_METHODS) if not selection else [selection] if isinstance(selection, str) else list(selection)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"--selection: {unknown[0]!r} is unknown; choose from: {', '.join(METHODS)}")
    return methods


def report_results(runs: list[RecordedRun], selection: Optional[str | Sequence[str]] = None, se: str = "sample"
                   ) -> tuple[dict, Optional[pd.DataFrame], list[str], int]:
    """(method -> (selected, summary), WILDS summary or None, methods that selected nothing, ddof): what
    a report shows, for the CLI and the Python API alike."""
    if se not in SE_DDOF:
        raise ConfigError(f"--se: {se!r} is unknown; choose from: {', '.join(SE_DDOF)}")
    ddof, methods = SE_DDOF[se], _methods(selection)
    results = method_results(runs, methods, ddof)
    wilds_selected = select_wilds(runs)
    wilds_summary = summarize_wilds(wilds_selected, ddof) if len(wilds_selected) else None
    return results, wilds_summary, [m for m in methods if m not in results], ddof


def render_report(fmt: str, results: dict, wilds_summary: Optional[pd.DataFrame], skipped: list[str]) -> str:
    """The report's text in md or latex (csv: see `csv_tables`)."""
    return (report_markdown if fmt == "md" else report_latex)(results, wilds_summary, skipped)


def csv_tables(results: dict, ddof: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(selected models, tidy figures) of every method, with a `method` column."""
    selected = pd.concat([s for s, _ in results.values()] or [pd.DataFrame()], ignore_index=True)
    summary = pd.concat([tidy(s).assign(method=m) for m, (_, s) in results.items()] or [pd.DataFrame()],
                        ignore_index=True)
    return selected.drop(columns=["path"], errors="ignore"), summary.assign(se_convention=se_words(ddof))


def write_report(runs_dir: str | Path, fmt: str = "md", selection: Optional[str | Sequence[str]] = None,
                 out: Optional[str | Path] = None, plots: bool = True, se: str = "sample") -> tuple[str, list[Path]]:
    """Write table.md / table.tex / selected.csv + summary.csv (every method, a `method` column) and
    the plots (training-domain selection, else the first method reported); returns (text, files). A failed
    write removes what it created and raises a StorageError naming the file."""
    runs_dir = Path(runs_dir)
    if runs_dir.is_file():
        raise DataError(f"{runs_dir} is a file; dagrad report reads a run or sweep folder: "
                        f"dagrad report {runs_dir.parent}")
    if not runs_dir.is_dir():
        raise DataError(f"{runs_dir}: no such folder (give a run or sweep folder)")
    runs = read_runs(runs_dir)
    results, wilds_summary, skipped, ddof = report_results(runs, selection, se)
    if not results and wilds_summary is None:
        raise DataError(_nothing_to_report(runs_dir, runs, _methods(selection)))
    out = Path(out) if out is not None else runs_dir / "report"
    created = make_folders(out)
    before = set(out.iterdir())
    try:
        return _write(out, runs, results, wilds_summary, skipped, ddof, fmt, plots)
    except (OSError, StorageError) as exc:
        for path in set(out.iterdir()) - before:
            path.unlink(missing_ok=True)
        remove_empty_folders(created)
        raise exc if isinstance(exc, StorageError) else storage_error(exc.filename or out, exc) from None


def _nothing_to_report(runs_dir: Path, runs: list[RecordedRun], methods: list[str]) -> str:
    singles = [r for r in runs if r.complete and len(r.test_envs) == 1]
    if methods == ["leave_one_out"] and singles:
        return (f"{runs_dir}: leave_one_out selection needs, for each run with test environment t, finished runs "
                f"with the pairs of test environments {{t, v}} for every other environment v (in a sweep: "
                f"grid.leave_one_out_envs); none of the {len(singles)} single-test-environment runs has all of them")
    return (f"{runs_dir}: no finished runs to report with {', '.join(methods)} selection (tables need "
            "single-test-environment runs, or runs under data.protocol=wilds)")


def _write(out: Path, runs: list[RecordedRun], results: dict, wilds_summary: Optional[pd.DataFrame], skipped: list[str],
           ddof: int, fmt: str, plots: bool) -> tuple[str, list[Path]]:
    files: list[Path] = []
    if fmt == "csv":
        selected, summary = csv_tables(results, ddof)
        write_text_atomic(out / "selected.csv", selected.to_csv(index=False))
        text = summary.to_csv(index=False)
        write_text_atomic(out / "summary.csv", text)
        files += [out / "selected.csv", out / "summary.csv"]
        if wilds_summary is not None:
            write_text_atomic(out / "wilds.csv", wilds_summary.to_csv(index=False))
            files.append(out / "wilds.csv")
    else:
        text = render_report(fmt, results, wilds_summary, skipped)
        files.append(out / ("table.md" if fmt == "md" else "table.tex"))
        write_text_atomic(files[-1], text)
    if plots and results:
        from dagrad.analysis.plots import plot_all

        method = "training_domain" if "training_domain" in results else next(iter(results))
        files += plot_all(runs, *results[method], out)
    return text, files
