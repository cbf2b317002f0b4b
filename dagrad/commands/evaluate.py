"""`dagrad evaluate RUN|SWEEP --data NAME_OR_FOLDER [--envs E ...] [--which best|last|swad|N]`: a kept
model scored on any dataset or folder tree (accuracy, loss, per-class accuracy, ECE, inference energy);
on a sweep folder, the model selection chose in each report cell. JSONL beside the run plus a table."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction, **common) -> argparse.ArgumentParser:
    from dagrad.analysis.selection import METHODS
    from dagrad.plugins import add_consent_arguments

    p = sub.add_parser("evaluate", description="Score a run's kept model, or on a sweep folder the model each "
                       "report cell selected, on a registered dataset or a folder tree ROOT/<class>/<image> or "
                       "ROOT/<environment>/<class>/<image>: accuracy, loss, per-class accuracy, expected "
                       "calibration error and inference energy.", **common)
    p.add_argument("target", type=Path, help="a run folder or a sweep folder")
    p.add_argument("--data", required=True, help="a registered dataset name or an image folder tree")
    p.add_argument("--envs", nargs="+", metavar="ENV", help="environments by name or index (default: all)")
    p.add_argument("--which", help="best (default for a run), last, swad or an epoch number; on a sweep "
                   "folder the default is each cell's selected model")
    p.add_argument("--selection", choices=list(METHODS), default="training_domain",
                   help="on a sweep folder: the model selection whose cells are evaluated")
    p.add_argument("--root", help="the data root for a dataset name (default: the run's data.root)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    p.add_argument("--out", type=Path, help="the JSONL file (default: TARGET/evaluations/<data>-<which>.jsonl)")
    add_consent_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    from dagrad.analysis.model_scores import evaluate_models, table
    from dagrad.plugins import consent_from

    lines, path = evaluate_models(args.target, args.data, args.envs, args.which, args.device, args.out, args.root,
                                  args.selection, consent_from(args))
    print(table(lines))
    print(f"written: {path}")
    return 0
