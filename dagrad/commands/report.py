"""`dagrad report RUNS_DIR [--format md|latex|csv] [--selection METHOD ...] [--se sample|domainbed] [--out DIR]`:
every model-selection method's tables (as DomainBed's collect_results prints them) and plots, from the
records below RUNS_DIR (nothing else is read). `--study [--alpha A]`: the GradSamp study instead, the sweep
as algorithm x reading x schedule, each cell tested against its skip control (dagrad.analysis.study)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction, **common) -> argparse.ArgumentParser:
    from dagrad.analysis.report import DEFAULT_METHODS
    from dagrad.analysis.tables import SE_DDOF
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
    p.add_argument("--study", action="store_true",
                   help="the GradSamp study: algorithm x reading x schedule, each cell's paired difference against "
                        "its skip control and full training, savings, and a verdict (paired t-test, Holm-corrected); "
                        "study.md/.tex/.csv and <dataset>-study.png/.svg heatmaps. One selection method "
                        "(default training_domain)")
    p.add_argument("--alpha", type=float, default=0.05, help="--study: the tests' level (default 0.05)")
    return p


def run(args: argparse.Namespace) -> int:
    from dagrad.analysis.report import write_report
    from dagrad.utils.errors import ConfigError

    if args.study:
        from dagrad.analysis.study_document import write_study

        if args.selection and len(args.selection) > 1:
            raise ConfigError("--study uses one model selection; give --selection once (default training_domain)")
        text, files = write_study(args.runs, args.format, args.selection[0] if args.selection else None, args.out,
                                  se=args.se, alpha=args.alpha)
    else:
        text, files = write_report(args.runs, args.format, args.selection, args.out, se=args.se)
    print(text)
    print("written: " + ", ".join(str(f) for f in files))
    return 0
