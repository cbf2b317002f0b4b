"""`dagrad train -c CONFIG [key=value ...] [--out DIR] [--resume]`: train (or resume) one experiment."""

from __future__ import annotations

import argparse
from pathlib import Path

from dagrad.errors import DagradError


def add_parser(sub: argparse._SubParsersAction, **common) -> argparse.ArgumentParser:
    p = sub.add_parser("train", description="Train one experiment. Configs (paths or shipped names such as "
                       "experiments/pacs) are merged in order, then key=value overrides (e.g. algorithm.name=coral "
                       "gradsamp.sampler=tensor).", **common)
    p.add_argument("-c", "--config", action="append", default=[], help="YAML config or shipped name (repeatable)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, dotted keys")
    p.add_argument("--out", type=Path, help="run folder (default runs/<name>-<run id>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint; "
                   "its config comes from the run's records (configs or overrides given too must describe the "
                   "same experiment; overrides alone apply on top of the recorded config)")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE",
                   help="import a module or .py file that registers components (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def run(args: argparse.Namespace) -> int:
    from dagrad.analysis.runs import load_run
    from dagrad.engine import train
    from dagrad.experiment import default_run_folder, load_experiment
    from dagrad.resuming import resume_command

    overrides = list(args.overrides)
    if args.plugin:
        overrides.append(f"plugins={args.plugin!r}".replace("'", '"'))
    if args.resume and args.out is None:
        raise DagradError("--resume needs --out (the folder of the run to continue)")
    exp = _resumed_experiment(args.out, args.config, overrides) if args.resume else load_experiment(args.config,
                                                                                                      overrides)
    out = args.out or default_run_folder(exp)
    args.on_interrupt = f"dagrad: interrupted; continue this run with: {resume_command(out)}"  # read by cli.main
    path = train(exp, out, resume=args.resume, progress=not args.quiet)
    s = load_run(path).summary_figures()
    print(f"OOD accuracy {100 * s['ood_acc']:.1f} %, training-domain validation {100 * s['val_acc']:.1f} %, "
          f"train energy {s['train_J']:.0f} J ({', '.join(s['train_sources'])}), "
          f"eval energy {s['eval_J']:.0f} J\nrecords: {path}")
    return 0


def _resumed_experiment(folder: Path, configs: list, overrides: list[str]):
    """The run's recorded config (with overrides on top), or the configs given, which must match it."""
    from dagrad.config import apply_overrides, from_dict
    from dagrad.experiment import load_experiment, resolve
    from dagrad.resuming import check_same_run, recorded_config

    if configs:
        return check_same_run(folder, load_experiment(configs, overrides))
    return check_same_run(folder, resolve(from_dict(apply_overrides(recorded_config(folder), overrides))))
