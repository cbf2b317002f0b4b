"""`dagrad report RUNS_DIR [--format md|latex|csv] [--selection ...] [--out DIR]`: tables and plots
from the records below RUNS_DIR (nothing else is read)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction, **common) -> argparse.ArgumentParser:
    from dagrad.analysis.selection import METHODS

    p = sub.add_parser("report", description="Tables and plots from the records under a folder.", **common)
    p.add_argument("runs", type=Path, help="a run or sweep folder")
    p.add_argument("--format", choices=["md", "latex", "csv"], default="md")
    p.add_argument("--selection", choices=list(METHODS), default="training_domain",
                   help="model selection (default: training-domain validation)")
    p.add_argument("--out", type=Path, help="where to write tables and plots (default: RUNS/report)")
    return p


def run(args: argparse.Namespace) -> int:
    from dagrad.analysis.report import write_report

    text, files = write_report(args.runs, args.format, args.selection, args.out)
    print(text)
    print("written: " + ", ".join(str(f) for f in files))
    return 0
