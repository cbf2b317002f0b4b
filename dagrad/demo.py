"""`dagrad demo`: the main job on the embedded default. ERM on rotated_digits (test environment 75°)
over several seeds, three ways: full training, GradSamp (default sampler, periodic schedule), and the
equal-energy control that simply skips the same epochs. The table and plots are the report's own
(`dagrad report` with `last` selection: the final model, no selection), built from the records."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from dagrad.config import PACKAGED_CONFIGS
from dagrad.engine import train
from dagrad.experiment import load_experiment

DEMO_CONFIG = PACKAGED_CONFIGS / "demo.yaml"
SETTINGS = (("full", "gradsamp.sampler=none"), ("gradsamp", "gradsamp.sampler=tensor"),
            ("control", "gradsamp.sampler=skip"))
SELECTION = "last"


def run_demo(out: Optional[Path] = None, seeds: int = 3, overrides: tuple[str, ...] = (),
             progress: bool | str = True) -> Path:
    """Train every setting on every seed, print the table, write records, table and plots; returns the folder."""
    from dagrad.analysis.plots import plot_all
    from dagrad.analysis.report import build, numerics_line, render_markdown
    from dagrad.analysis.runs import load_runs

    out = Path(out or Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S"))
    experiments = {(label, s): load_experiment(DEMO_CONFIG, [setting, f"trial_seed={s}", *overrides])
                   for label, setting in SETTINGS for s in range(seeds)}  # check everything before training
    from dagrad.launch.eta import eta_seconds, format_eta

    started = time.time()
    durations: list[tuple[str, float]] = []  # (setting, seconds) of the runs done: the estimate's ground
    for index, ((label, seed), exp) in enumerate(experiments.items()):
        if progress:
            left = [other for other, _ in list(experiments)[index:]]
            eta = format_eta(eta_seconds(durations, left))
            print(f"[{time.time() - started:5.0f}s] {label}, trial seed {seed}" + (f" | {eta}" if eta else ""),
                  flush=True)
        run_started = time.time()
        train(exp, out / f"{label}-seed{seed}", progress=progress)
        durations.append((label, time.time() - run_started))
    runs = load_runs(out)
    selected, summary = build(runs, SELECTION)
    table = render_markdown(summary, SELECTION, numerics_line(selected))
    (out / "table.md").write_text(table)
    print(table)
    figures = [f for f in plot_all(runs, selected, summary, out) if f.suffix == ".png"]
    print(f"records: {out}/*/records.jsonl\ntable:   {out / 'table.md'}\nplots:   {', '.join(map(str, figures))}"
          f"\nwall time: {time.time() - started:.0f} s")
    return out
