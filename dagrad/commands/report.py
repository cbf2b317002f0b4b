"""`dagrad report RUNS_DIR [--format md|latex|csv] [--selection METHOD ...] [--se sample|domainbed] [--out DIR]`:
every model-selection method's tables (as DomainBed's collect_results prints them) and plots, from the
records below RUNS_DIR (nothing else is read)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction, **common) -> argparse.ArgumentParser:
    from dagrad.analysis.document import DEFAULT_METHODS
    from dagrad.analysis.report import SE_DDOF
    from dagrad.analysis.selection import METHODS

    p = sub.add_parser("report", description="Tables and plots from the records under a folder: one table per "
                       "dataset for every model-selection method, an all-datasets table closing each, and "
                       "WILDS's metrics for runs under data.protocol=wilds.", **common)
    p.add_argument("runs", type=Path, help="a run or sweep folder")
    p.add_argument("--format", choices=["md", "latex", "csv"], default="md")
    p.add_argument("--selection", choices=list(METHODS), action="append",
                   help=f"report only this model selection (repeatable; default: {', '.join(DEFAULT_METHODS)}; "
                        "leave_one_out only where its pair runs exist)")
    p.add_argument("--se", choices=list(SE_DDOF), default="sample",
                   help="standard error: sample (std with ddof 1, the default) or domainbed (np.std, ddof 0, as "
                        "DomainBed's collect_results, to compare with published tables)")
    p.add_argument("--out", type=Path, help="where to write tables and plots (default: RUNS/report)")
    return p


def run(args: argparse.Namespace) -> int:
    from dagrad.analysis.document import write_report

    text, files = write_report(args.runs, args.format, args.selection, args.out, se=args.se)
    print(text)
    print("written: " + ", ".join(str(f) for f in files))
    return 0
