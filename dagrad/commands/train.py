"""`dagrad train -c CONFIG [key=value ...] [--out DIR] [--resume | --restart]`: train (or resume) one experiment.

`torchrun --nproc_per_node=N -m dagrad train ...` trains it on N processes, one GPU each (dagrad.run.distributed).

`--resume --out DIR` needs no config: the run's records hold the config it was started with (configs given
too must describe the same experiment; overrides alone apply on top of the recorded config). The command reads
its arguments and prints; dagrad.api.training decides the experiment and the folder, as for `dagrad.train`."""

from __future__ import annotations

import argparse
from pathlib import Path

from dagrad.plugins import add_consent_arguments, consent_from


def add_parser(sub: argparse._SubParsersAction, **common) -> argparse.ArgumentParser:
    p = sub.add_parser("train", description="Train one experiment. Configs (paths or shipped names such as "
                       "experiments/pacs) are merged in order, then key=value overrides (e.g. algorithm.name=coral "
                       "gradsamp.sampler=tensor).", **common)
    p.add_argument("-c", "--config", action="append", default=[], help="YAML config or shipped name (repeatable)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, dotted keys")
    p.add_argument("--out", type=Path, help="run folder (default runs/<name>-<run id>, the same for the same "
                   "experiment, so --resume and --restart find it)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint; "
                       "its config comes from the run's records (configs given too must describe the same "
                       "experiment; overrides alone apply on top of the recorded config)")
    again.add_argument("--restart", action="store_true", help="move the attempt in --out aside "
                       "(to <out>.broken-<time>/, nothing is deleted) and start afresh")
    add_consent_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars (the one line per epoch stays)")
    return p


def run(args: argparse.Namespace) -> int:
    from dagrad.analysis.runs import read_run
    from dagrad.api.arguments import run_folder
    from dagrad.api.training import training
    from dagrad.run.distributed import is_main_process

    plan = training(args.config or None, args.overrides, out=run_folder(args.out, "--out "), resume=args.resume,
                    restart=args.restart, plugins=consent_from(args), entries=args.plugin)
    args.on_interrupt = f"dagrad: interrupted; continue this run with: {plan.resume_command()}"
    path = plan.run(progress="lines" if args.quiet else True)
    if not is_main_process():
        return 0  # under torchrun, rank 0 speaks for the job
    s = read_run(path).summary_figures()
    model = " (averaged model)" if s["reported"] == "averaged" else ""  # SWAD: the average's, not the last epoch's
    print(f"OOD accuracy{model} {100 * s['ood_acc']:.1f} %, training-domain validation {100 * s['val_acc']:.1f} %, "
          f"train energy {s['train_J']:.0f} J ({', '.join(s['train_sources'])}), "
          f"eval energy {s['eval_J']:.0f} J\nrecords: {path}")
    return 0
