"""`dagrad train -c CONFIG [key=value ...] [--out DIR] [--resume | --restart]`: train (or resume) one experiment."""

from __future__ import annotations

import argparse
from pathlib import Path

from dagrad.plugins import add_consent_arguments, consent_from, with_plugins


def add_parser(sub: argparse._SubParsersAction, **common) -> argparse.ArgumentParser:
    p = sub.add_parser("train", description="Train one experiment. Configs (paths or shipped names such as "
                       "experiments/pacs) are merged in order, then key=value overrides (e.g. algorithm.name=coral "
                       "gradsamp.sampler=tensor).", **common)
    p.add_argument("-c", "--config", action="append", default=[], help="YAML config or shipped name (repeatable)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, dotted keys")
    p.add_argument("--out", type=Path, help="run folder (default runs/<name>-<run id>, the same for the same "
                   "experiment, so --resume and --restart find it)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    again.add_argument("--restart", action="store_true", help="move the attempt in --out aside "
                       "(to <out>.broken-<time>/, nothing is deleted) and start afresh")
    add_consent_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars (the one line per epoch stays)")
    return p


def run(args: argparse.Namespace) -> int:
    from dagrad.analysis.runs import load_run
    from dagrad.config import load_config
    from dagrad.engine import train
    from dagrad.experiment import default_run_folder, resolve

    cfg = load_config(args.config, args.overrides)
    cfg.plugins = with_plugins(cfg.plugins, args.plugin)  # --plugin adds to the config's list (and consents)
    exp = resolve(cfg, consent_from(args))
    out = args.out or default_run_folder(exp)
    path = train(exp, out, resume=args.resume, restart=args.restart, progress="lines" if args.quiet else True)
    s = load_run(path).summary_figures()
    print(f"OOD accuracy {100 * s['ood_acc']:.1f} %, training-domain validation {100 * s['val_acc']:.1f} %, "
          f"train energy {s['train_J']:.0f} J ({', '.join(s['train_sources'])}), "
          f"eval energy {s['eval_J']:.0f} J\nrecords: {path}")
    return 0
