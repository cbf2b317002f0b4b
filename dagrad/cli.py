"""The `dagrad` command: demo, train, sweep, report, data, energy, list.

Bad input (a config key, a dataset, a checkpoint) ends as one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Callable, Optional

from dagrad.errors import DagradError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable:
    def decorate(fn: Callable[[argparse.Namespace], int]) -> Callable:
        COMMANDS[name] = fn
        return fn

    return decorate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dagrad",
        description="Domain generalization/adaptation baselines (ERM, CORAL, DANN, SWAD) whose epochs can be "
                    "swapped for GradSamp draws, with OOD accuracy set against training energy.",
        epilog="Start with `dagrad demo`. Every command has --help.",
    )
    parser.add_argument("--threads", type=int, metavar="N",
                        help="torch intra-op threads (default: torch's choice; use 1 per process when running "
                             "several processes on few cores)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("demo", help="ERM on the embedded rotated_digits: full training vs GradSamp vs skip control",
                       description="Trains ERM on rotated_digits (test environment 75 degrees) over several seeds as "
                                   "full training, with GradSamp, and with the equal-energy control; prints a "
                                   "table and writes records, a table and a plot.")
    p.add_argument("--out", type=Path, help="output folder (default runs/demo-<time>)")
    p.add_argument("--seeds", type=int, default=3, help="trial seeds per setting (default 3)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for every run")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("train", help="train one experiment from YAML config(s)",
                       description="Train one experiment. Configs are merged in order, then key=value "
                                   "overrides (e.g. algorithm.name=coral gradsamp.sampler=tensor).")
    p.add_argument("-c", "--config", action="append", default=[], help="YAML config (repeatable)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, dotted keys")
    p.add_argument("--out", type=Path, help="run folder (default runs/<name>-<config hash>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE",
                   help="import a module or .py file that registers algorithms/datasets (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("sweep", help="run a grid of experiments (skips finished jobs on relaunch)")
    p.add_argument("-c", "--config", required=True, help="sweep YAML")
    p.add_argument("--out", type=Path, help="sweep folder (default runs/sweep-<name>)")
    p.add_argument("--workers", type=int, default=1, help="local processes running jobs (default 1)")
    p.add_argument("--dry-run", action="store_true", help="list the jobs and their state, run nothing")

    p = sub.add_parser("report", help="tables and plots from the records under a folder")
    p.add_argument("runs", type=Path, help="a run or sweep folder")
    p.add_argument("--format", choices=["md", "latex", "csv"], default="md")
    p.add_argument("--selection", choices=["training_domain", "leave_one_out", "oracle", "last"],
                   default="training_domain", help="model selection (default: training-domain validation)")
    p.add_argument("--out", type=Path, help="where to write tables and plots (default: RUNS/report)")

    p = sub.add_parser("data", help="check, download or list datasets")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    d = dsub.add_parser("check", help="count images per environment against the published figures")
    d.add_argument("name")
    d.add_argument("--root", required=True, type=Path)
    d = dsub.add_parser("download", help="download and extract a dataset into the layout dagrad reads")
    d.add_argument("name")
    d.add_argument("--root", required=True, type=Path)
    dsub.add_parser("list", help="datasets dagrad knows")

    p = sub.add_parser("energy", help="energy meter tools")
    esub = p.add_subparsers(dest="energy_command", metavar="ACTION", required=True)
    e = esub.add_parser("probe", help="which energy backend is active, why, and a short calibration")
    e.add_argument("overrides", nargs="*", metavar="key=value", help="energy.* overrides, e.g. energy.backend=rapl")
    e.add_argument("--device", default="cpu")
    e.add_argument("--seconds", type=float, default=1.0, help="length of each calibration window")

    sub.add_parser("list", help="algorithms, datasets, networks and GradSamp samplers")
    return parser


@command("demo")
def _demo(args: argparse.Namespace) -> int:
    from dagrad.demo import run_demo

    if args.seeds < 1:
        raise _usage("--seeds must be at least 1")
    run_demo(args.out, seeds=args.seeds, overrides=tuple(args.overrides), progress=not args.quiet)
    return 0


@command("train")
def _train(args: argparse.Namespace) -> int:
    from dagrad.config import config_hash, load_config
    from dagrad.engine import train
    from dagrad.summary import summarize_run

    overrides = list(args.overrides)
    if args.plugin:
        overrides.append(f"plugins={args.plugin!r}".replace("'", '"'))
    cfg = load_config(args.config, overrides)
    out = args.out or Path("runs") / f"{cfg.name or cfg.algorithm.name + '-' + cfg.data.name}-{config_hash(cfg)}"
    if args.resume and args.out is None:
        raise _usage("--resume needs --out (the folder of the run to continue)")
    path = train(cfg, out, resume=args.resume, progress=not args.quiet)
    s = summarize_run(path)
    print(f"OOD accuracy {100 * s['ood_acc']:.1f} %, training-domain validation {100 * s['val_acc']:.1f} %, "
          f"train energy {s['train_J']:.0f} J ({', '.join(s['train_sources'])}), "
          f"eval energy {s['eval_J']:.0f} J\nrecords: {path}")
    return 0


@command("data")
def _data(args: argparse.Namespace) -> int:
    from dagrad.datasets import names

    if args.data_command == "list":
        from dagrad.datasets.catalog import CATALOG

        for name in names():
            entry = CATALOG.get(name)
            if entry is None:
                print(f"{name:18s} embedded: built from scikit-learn's digits, no download")
            else:
                envs = ", ".join(entry.environments) or "the folders found"
                print(f"{name:18s} {entry.layout} layout under ROOT/{entry.directory}; environments: {envs}; "
                      f"classes: {entry.num_classes or 'as found'}")
        return 0
    if args.data_command == "check":
        from dagrad.datasets.check import check

        report = check(args.name, args.root)
        print(report.format())
        return 0 if report.ok else 1
    from dagrad.datasets.download import download

    path = download(args.name, args.root)
    print(f"{args.name} is ready in {path}; check it with `dagrad data check {args.name} --root {args.root}`")
    return 0


@command("energy")
def _energy(args: argparse.Namespace) -> int:
    from dagrad.config import EnergyConfig, apply_overrides, from_dict
    from dagrad.energy.probe import probe

    bad = [o for o in args.overrides if not o.startswith("energy.")]
    if bad:
        raise _usage(f"override {bad[0]!r}: only energy.* keys apply here")
    cfg = from_dict(apply_overrides({}, args.overrides).get("energy", {}), EnergyConfig, "energy.")
    print(probe(cfg, device=args.device, seconds=args.seconds))
    return 0


@command("list")
def _list(args: argparse.Namespace) -> int:
    from dagrad.algorithms import registry
    from dagrad.config import GradSampConfig
    from dagrad.datasets import names as dataset_names
    import dataclasses

    samplers = next(f for f in dataclasses.fields(GradSampConfig) if f.name == "sampler").metadata["choices"]
    print("algorithms: " + ", ".join(registry.names()))
    print("datasets:   " + ", ".join(dataset_names()))
    print("networks:   digits_cnn, resnet18, resnet50, timm:<any timm model>")
    print("samplers:   " + ", ".join(samplers))
    return 0


def _usage(message: str) -> DagradError:
    return DagradError(message)


_SHOWN: set[str] = set()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Each distinct warning once per command (the demo and sweeps build a meter per run, and imports
    that change warning filters reset Python's own once-per-location memory)."""
    text = str(message)
    if text not in _SHOWN:
        _SHOWN.add(text)
        print(f"dagrad: warning: {text}", file=file or sys.stderr)


def main(argv: Optional[list[str]] = None) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    warnings.showwarning = _show_warning
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        import torch

        torch.set_num_threads(max(1, args.threads))
    key = args.command
    handler = COMMANDS.get(key) or _optional_command(key)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            return handler(args)
    except DagradError as exc:
        print(f"dagrad: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("dagrad: interrupted; a run continues from its last epoch with `dagrad train --resume --out DIR`",
              file=sys.stderr)
        return 130


def _optional_command(name: str) -> Callable[[argparse.Namespace], int]:
    """Commands implemented in their own modules (dagrad.commands.<name>)."""
    import importlib

    return importlib.import_module(f"dagrad.commands.{name}").run


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
