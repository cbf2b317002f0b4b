"""`dagrad export RUN [--format torchscript|onnx] [--which best] [--out FILE]`: a kept model for serving,
written only once its outputs match the eager model's within float tolerance."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction, **common) -> argparse.ArgumentParser:
    from dagrad.plugins import add_consent_arguments  # the formats are checked by models.exporting: the
    # parser is built for every command, and importing the exporter here would load torch for `dagrad status`

    p = sub.add_parser("export", description="Export a run's kept model (logits out) as TorchScript, or as ONNX "
                       "with the export extra (pip install 'dagrad[export]').", **common)
    p.add_argument("run", type=Path, help="a run folder")
    p.add_argument("--format", default="torchscript", help="torchscript (default) or onnx")
    p.add_argument("--which", default="best", help="best (default), last, swad or an epoch number")
    p.add_argument("--out", type=Path, help="the file (default: RUN/exported/<which>.<format>)")
    add_consent_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    from dagrad.models.exporting import export
    from dagrad.plugins import consent_from

    path, diff = export(args.run, args.format, args.which, args.out, consent_from(args))
    print(f"written: {path} (max |logit difference| from the eager model: {diff:.2g})")
    return 0
