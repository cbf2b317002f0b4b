"""`dagrad demo`: the main job on the embedded default (see dagrad.demo)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dagrad.utils.errors import DagradError


def add_parser(sub: argparse._SubParsersAction, **common) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", description="Trains ERM on rotated_digits (test environment 75 degrees) over several "
                       "seeds as full training, with GradSamp, and with the equal-energy control (each seed's three "
                       "settings next to each other in time, on a pinned thread count: 1 unless --threads says "
                       "otherwise); prints a table and writes records, a table and plots.", **common)
    p.add_argument("--out", type=Path, help="output folder (default runs/demo-<time>)")
    p.add_argument("--seeds", type=int, default=3, help="trial seeds per setting (default 3)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for every run")
    p.add_argument("--quiet", action="store_true", help="no progress bars (the one line per epoch stays)")
    p.add_argument("--order", default="side-by-side", help="side-by-side (default: each seed's three settings one "
                   "after another) or grouped (every seed of one setting, then the next setting)")
    return p


def run(args: argparse.Namespace) -> int:
    from dagrad.demo import DEMO_THREADS, run_demo

    if args.seeds < 1:
        raise DagradError(f"--seeds must be at least 1, got {args.seeds}")
    threads = getattr(args, "threads", None) or DEMO_THREADS  # --threads N, else the demo's pinned count
    run_demo(args.out, seeds=args.seeds, overrides=tuple(args.overrides), progress="lines" if args.quiet else True,
             order=args.order, threads=threads)
    return 0
