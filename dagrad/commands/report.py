"""`dagrad report RUNS_DIR [--format md|latex|csv] [--selection ...] [--out DIR]`: tables and plots
from the records below RUNS_DIR (nothing else is read)."""

from __future__ import annotations

import argparse

from dagrad.report import write_report


def run(args: argparse.Namespace) -> int:
    text, files = write_report(args.runs, args.format, args.selection, args.out)
    print(text)
    print("written: " + ", ".join(str(f) for f in files))
    return 0
