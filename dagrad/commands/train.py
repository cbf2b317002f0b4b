"""`dagrad train -c CONFIG [key=value ...] [--out DIR] [--resume | --restart]`: train (or resume) one experiment.

`torchrun --nproc_per_node=N -m dagrad train ...` trains it on N processes, one GPU each (dagrad.run.distributed).

`--resume --out DIR` needs no config: the run's records hold the config it was started with (configs given
too must describe the same experiment; overrides alone apply on top of the recorded config)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dagrad.plugins import PluginConsent, add_consent_arguments, consent_from, with_plugins


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
    from dagrad.run.distributed import is_main_process
    from dagrad.federated.route import train  # federated configs run on Flower, the others in the engine
    from dagrad.config.experiment import default_run_folder
    from dagrad.run.resuming import resume_command

    consent = consent_from(args)
    args.out = run_folder_argument(args.out)
    if args.resume and args.out is not None and not args.config:
        exp = _recorded_experiment(args.out, args.overrides, args.plugin, consent)
    else:
        exp = _given_experiment(args.config, args.overrides, args.plugin, consent)
        if args.resume and args.out is not None:
            _check_same_run(args.out, exp)
    out = args.out or default_run_folder(exp)
    args.on_interrupt = f"dagrad: interrupted; continue this run with: {resume_command(out, exp.cfg.plugins)}"
    path = train(exp, out, resume=args.resume, restart=args.restart, progress="lines" if args.quiet else True)
    if not is_main_process():
        return 0  # under torchrun, rank 0 speaks for the job
    s = read_run(path).summary_figures()
    model = " (averaged model)" if s["reported"] == "averaged" else ""  # SWAD: the average's, not the last epoch's
    print(f"OOD accuracy{model} {100 * s['ood_acc']:.1f} %, training-domain validation {100 * s['val_acc']:.1f} %, "
          f"train energy {s['train_J']:.0f} J ({', '.join(s['train_sources'])}), "
          f"eval energy {s['eval_J']:.0f} J\nrecords: {path}")
    return 0


def run_folder_argument(out: Path | None) -> Path | None:
    """--out as given, or resolved where it has no name of its own (`.`, `..`, `dir/..`), so that moving
    the attempt aside (--restart) and naming it in messages work; the file system root is refused."""
    if out is None or out.name not in ("", ".."):
        return out
    resolved = out.expanduser().resolve()
    if not resolved.name:
        from dagrad.utils.errors import ConfigError

        raise ConfigError(f"--out {out}: the file system root cannot be a run folder; name a folder for the run")
    return resolved


def _given_experiment(configs: list, overrides: list[str], plugins: list[str], consent: PluginConsent):
    from dagrad.config.files import load_config
    from dagrad.config.experiment import resolve

    cfg = load_config(configs, overrides)
    cfg.plugins = with_plugins(cfg.plugins, plugins)  # --plugin adds to the config's list (and consents)
    return resolve(cfg, consent)


def _recorded_experiment(folder: Path, overrides: list[str], plugins: list[str], consent: PluginConsent):
    """The config the run in `folder` was started with, overrides on top; it must still be the same run."""
    from dagrad.config.schema import from_dict
    from dagrad.config.files import apply_overrides
    from dagrad.config.experiment import resolve
    from dagrad.run.resuming import recorded_config

    cfg = from_dict(apply_overrides(recorded_config(folder), overrides))
    cfg.plugins = with_plugins(cfg.plugins, plugins)
    return _check_same_run(folder, resolve(cfg, consent))


def _check_same_run(folder: Path, exp):
    """`exp` when `folder` holds no run yet or holds this experiment's; else one line naming what differs."""
    from dagrad.records.files import RECORDS_NAME
    from dagrad.run.resuming import check_same_run

    return check_same_run(folder, exp) if (Path(folder) / RECORDS_NAME).is_file() else exp
