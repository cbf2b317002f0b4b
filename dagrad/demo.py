"""`dagrad demo`: the main job on the embedded default. ERM on rotated_digits (test environment 75°)
over several seeds, three ways: full training, GradSamp (default sampler, periodic schedule), and the
equal-energy control that simply skips the same epochs. Prints a table, writes records and a plot."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from dagrad.config import load_config
from dagrad.engine import train
from dagrad.summary import mean_se, summarize_run

DEMO_CONFIG = Path(__file__).resolve().parent / "configs" / "demo.yaml"


@dataclass(frozen=True)
class Variant:
    label: str
    overrides: tuple[str, ...]


VARIANTS = (
    Variant("full training", ("gradsamp.sampler=none",)),
    Variant("GradSamp (tensor)", ("gradsamp.sampler=tensor",)),
    Variant("control (skip)", ("gradsamp.sampler=skip",)),
)


def run_demo(out: Optional[Path] = None, seeds: int = 3, overrides: tuple[str, ...] = (),
             progress: bool = True) -> Path:
    """Train every variant on every seed, print the table, write records and plots; returns the folder."""
    out = Path(out or Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S"))
    configs = {(v.label, s): load_config(DEMO_CONFIG, [*v.overrides, f"trial_seed={s}", *overrides])
               for v in VARIANTS for s in range(seeds)}  # validate everything before training anything
    started = time.time()
    runs: dict[str, list[dict]] = {v.label: [] for v in VARIANTS}
    for (label, seed), cfg in configs.items():
        if progress:
            print(f"[{time.time() - started:5.0f}s] {label}, trial seed {seed}", flush=True)
        slug = label.split(" ")[0].lower().replace("(", "")
        path = train(cfg, out / f"{slug}-seed{seed}", progress=progress)
        runs[label].append(summarize_run(path))
    table = format_table(runs, configs[(VARIANTS[0].label, 0)])
    (out / "table.md").write_text(table + "\n")
    print(table)
    plot = plot_runs(runs, out / "demo.png")
    print(f"\nrecords: {out}/*/records.jsonl\nplot:    {plot}\ntable:   {out / 'table.md'}"
          f"\nwall time: {time.time() - started:.0f} s")
    return out


def format_table(runs: dict[str, list[dict]], cfg) -> str:
    full_train = mean_se([r["train_J"] for r in runs[VARIANTS[0].label]])[0]
    full_updates = mean_se([r["updates"] for r in runs[VARIANTS[0].label]])[0]
    sources = sorted({s for rs in runs.values() for r in rs for s in r["train_sources"] + r["eval_sources"]})
    first = next(iter(runs.values()))[0]
    lines = [
        f"{cfg.data.name}, test environment {', '.join(first['test_env_names'])}, {cfg.epochs} epochs x "
        f"{cfg.steps_per_epoch} steps, {len(next(iter(runs.values())))} seeds; mean ± SE over seeds",
        "",
        "| setting | sampled epochs | OOD acc (%) | train-domain val acc (%) | updates (saved) "
        "| train energy, J (saved) | eval energy, J | wall (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, rs in runs.items():
        sampled = sorted({i for r in rs for i, k in enumerate(r["kinds"]) if k == "sampled"})
        ood, ood_se = mean_se([100 * r["ood_acc"] for r in rs])
        val, val_se = mean_se([100 * r["val_acc"] for r in rs])
        train_j, train_se = mean_se([r["train_J"] for r in rs])
        eval_j, _ = mean_se([r["eval_J"] for r in rs])
        wall, _ = mean_se([r["seconds"] for r in rs])
        updates = mean_se([r["updates"] for r in rs])[0]
        saving = 100 * (1 - train_j / full_train) if full_train else float("nan")
        lines.append(f"| {label} | {','.join(map(str, sampled)) or '-'} | {ood:.1f} ± {ood_se:.1f} | "
                     f"{val:.1f} ± {val_se:.1f} | {updates:.0f} ({100 * (1 - updates / full_updates):.0f} %) | "
                     f"{train_j:.0f} ± {train_se:.0f} ({saving:.0f} %) | {eval_j:.0f} | {wall:.1f} |")
    lines += ["", f"energy source: {', '.join(sources) or 'none'}; an estimate (CPU-seconds x watts per thread) "
              f"moves with machine load, the update count does not"]
    return "\n".join(lines)


def plot_runs(runs: dict[str, list[dict]], path: Path) -> Path:
    """OOD accuracy per epoch and against cumulative training energy, mean over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (ax_epoch, ax_energy) = plt.subplots(1, 2, figsize=(10, 4))
    for label, rs in runs.items():
        curves = np.array([r["curve"] for r in rs]) * 100
        mean = curves.mean(0)
        epochs = np.arange(len(mean))
        line, = ax_epoch.plot(epochs, mean, marker="o", ms=3, label=label)
        sampled = [i for i, k in enumerate(rs[0]["kinds"]) if k == "sampled"]
        ax_epoch.scatter(sampled, mean[sampled], s=60, facecolors="none", edgecolors=line.get_color())
        energy, energy_se = mean_se([r["train_J"] for r in rs])
        ood_se = mean_se(list(curves[:, -1]))[1]
        ax_energy.errorbar([energy], [mean[-1]], xerr=[0 if np.isnan(energy_se) else energy_se],
                           yerr=[0 if np.isnan(ood_se) else ood_se],
                           fmt="o", color=line.get_color(), capsize=4, label=label)
    ax_epoch.set(xlabel="epoch (hollow circles: sampled epochs)", ylabel="OOD accuracy (%)",
                 title="Test environment accuracy per epoch")
    ax_energy.set(xlabel="training energy (J, estimated)", ylabel="final OOD accuracy (%)",
                  title="Accuracy against training energy")
    for ax in (ax_epoch, ax_energy):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
