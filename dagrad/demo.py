"""`dagrad demo`: the main job on the embedded default. ERM on rotated_digits (test environment 75°)
over several seeds, three ways: full training, GradSamp (default sampler, periodic schedule), and the
equal-energy control that simply skips the same epochs. The table and plots are the report's own
(`dagrad report` with `last` selection: the final model, no selection), built from the records.

The three settings of one seed run next to each other (full, GradSamp, control; then the next seed), so a
change in the machine's load falls on every arm alike; `order="grouped"` runs setting after setting. The
demo pins torch's thread count (DEMO_THREADS unless told otherwise): results are bit-identical only for
the same CPU type, thread count and torch version, and every run's header records its threads."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from dagrad.config.files import PACKAGED_CONFIGS
from dagrad.run.training import train_run
from dagrad.config.experiment import load_experiment

DEMO_CONFIG = PACKAGED_CONFIGS / "demo.yaml"
SETTINGS = (("full", "gradsamp.sampler=none"), ("gradsamp", "gradsamp.sampler=tensor"),
            ("control", "gradsamp.sampler=skip"))
SELECTION = "last"
#: the demo's torch thread count unless `--threads` says otherwise: one thread reproduces on any machine
#: with the same CPU type and torch, and has no idle threads to spin
DEMO_THREADS = 1


def demo_jobs(seeds: int, order: str = "side-by-side") -> list[tuple[str, int]]:
    """(setting label, trial seed) in training order: side-by-side (a seed's settings next to each other)
    or grouped (every seed of one setting, then the next setting)."""
    from dagrad.launch.grid import check_order

    if check_order(order) == "grouped":
        return [(label, s) for label, _ in SETTINGS for s in range(seeds)]
    return [(label, s) for s in range(seeds) for label, _ in SETTINGS]


def run_demo(out: Optional[Path] = None, seeds: int = 3, overrides: tuple[str, ...] = (),
             progress: bool | str = True, order: str = "side-by-side", threads: int = DEMO_THREADS) -> Path:
    """Train every setting on every seed (in `order`, on `threads` torch threads), print the table, write
    records, table and plots; returns the folder."""
    import torch

    from dagrad.analysis.contention import busy_line
    from dagrad.analysis.plots import plot_all
    from dagrad.analysis.tables import build, numerics_line, tables_markdown
    from dagrad.analysis.runs import read_runs
    from dagrad.utils.errors import ConfigError

    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ConfigError(f"threads must be at least 1, got {threads!r}")
    out = Path(out or Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S"))
    from dagrad.launch.eta import eta_seconds, format_eta

    settings = dict(SETTINGS)
    experiments = {(label, s): load_experiment(DEMO_CONFIG, [settings[label], f"trial_seed={s}", *overrides])
                   for label, s in demo_jobs(seeds, order)}  # check everything before training
    started, before = time.time(), torch.get_num_threads()
    if progress:
        print(f"threads: {threads} (torch {torch.__version__}); order: {order}", flush=True)
    durations: list[tuple[str, float]] = []  # (setting, seconds) of the runs done: the estimate's ground
    torch.set_num_threads(threads)
    try:
        for index, ((label, seed), exp) in enumerate(experiments.items()):
            if progress:
                left = [other for other, _ in list(experiments)[index:]]
                eta = format_eta(eta_seconds(durations, left))
                print(f"[{time.time() - started:5.0f}s] {label}, trial seed {seed}" + (f" | {eta}" if eta else ""),
                      flush=True)
            run_started = time.time()
            train_run(exp, out / f"{label}-seed{seed}", progress=progress)
            durations.append((label, time.time() - run_started))
    finally:
        torch.set_num_threads(before)
    runs = read_runs(out)
    selected, summary = build(runs, SELECTION)
    table = tables_markdown(summary, SELECTION, numerics_line(selected))
    (out / "table.md").write_text(table)
    busy = busy_line(summary)  # estimated energy on a busy machine: the updates saved first, then why
    print(f"{busy}\n\n{table}" if busy else table)
    figures = [f for f in plot_all(runs, selected, summary, out) if f.suffix == ".png"]
    print(f"records: {out}/*/records.jsonl\ntable:   {out / 'table.md'}\nplots:   {', '.join(map(str, figures))}"
          f"\nwall time: {time.time() - started:.0f} s")
    return out
