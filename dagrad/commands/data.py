"""`dagrad data list|check|download`: the datasets dagrad knows, and the real ones on disk."""

from __future__ import annotations

import argparse
from pathlib import Path

from dagrad.plugins import add_consent_arguments, consent_from, import_plugins


def add_parser(sub: argparse._SubParsersAction, **common) -> argparse.ArgumentParser:
    p = sub.add_parser("data", description="Check, download or list datasets.", **common)
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    d = dsub.add_parser("check", help="count images per environment against the published figures")
    d.add_argument("name")
    d.add_argument("--root", required=True, type=Path)
    d = dsub.add_parser("download", help="download and extract a dataset into the layout dagrad reads")
    d.add_argument("name")
    d.add_argument("--root", required=True, type=Path)
    d = dsub.add_parser("list", help="datasets dagrad knows, where they live and their options")
    for d in dsub.choices.values():
        add_consent_arguments(d)  # a plugin may register datasets
    return p


def describe(name: str) -> str:
    """One line on a registered dataset, read from its spec."""
    from dagrad.datasets import DATASETS

    entry = DATASETS.get(name)
    spec = entry.load()
    where = "embedded, no download" if spec.layout == "embedded" else \
        f"{spec.layout} layout under ROOT/{spec.directory}" + ("" if spec.download or spec.downloader else "; not downloadable by dagrad")
    envs = ", ".join(spec.environments) or "the folders found"
    options = ", ".join(f"{k}={v.default!r}" for k, v in entry.option_table().items()) or "none"
    return (f"{name:18s} {spec.description}; {where}; environments: {envs}; classes: {spec.num_classes or 'as found'}"
            f"; options: {options}" + ("" if entry.builtin else f" [from {entry.origin}]"))


def run(args: argparse.Namespace) -> int:
    from dagrad.datasets import DATASETS

    consent = consent_from(args)
    import_plugins(sorted(consent.named), consent)
    if args.data_command == "list":
        for name in DATASETS.names():
            print(describe(name))
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
