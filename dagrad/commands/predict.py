"""`dagrad predict RUN IMAGES_OR_FOLDER ... [--which best] [--out FILE]`: class probabilities per image."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction, **common) -> argparse.ArgumentParser:
    from dagrad.plugins import add_consent_arguments

    p = sub.add_parser("predict", description="Class probabilities per image from a run's kept model, as CSV "
                       "(file, predicted class, one column per class).", **common)
    p.add_argument("run", type=Path, help="a run folder")
    p.add_argument("images", nargs="+", help="image files or folders (searched recursively)")
    p.add_argument("--which", default="best", help="best (default), last, swad or an epoch number")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    p.add_argument("--out", type=Path, help="write the CSV here instead of to stdout")
    add_consent_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    from dagrad.models.predicting import predict
    from dagrad.plugins import consent_from

    text, _ = predict(args.run, args.images, args.which, args.device, args.out, consent_from(args))
    if args.out is None:
        sys.stdout.write(text)
    else:
        print(f"written: {args.out}")
    return 0
