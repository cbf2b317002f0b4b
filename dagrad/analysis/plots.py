"""Accuracy-vs-energy figures (PNG and SVG, matplotlib Agg), drawn only from records.

- `<dataset>-pareto`: OOD accuracy against total energy per configuration, SE error bars on both axes,
  the Pareto front (no other configuration is both cheaper and more accurate) marked.
- `<dataset>-curves`: OOD accuracy against cumulative energy over epochs, the mean curve over the
  chosen runs of each configuration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dagrad.analysis.frames import epochs_frame
from dagrad.analysis.runs import Run


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pareto_front(energy: list[float], accuracy: list[float]) -> list[int]:
    """Indices of points no other point dominates (lower or equal energy and higher accuracy)."""
    front = []
    for i, (e, a) in enumerate(zip(energy, accuracy)):
        dominated = any((e2 <= e and a2 > a) or (e2 < e and a2 >= a)
                        for j, (e2, a2) in enumerate(zip(energy, accuracy)) if j != i)
        if not dominated and np.isfinite(e) and np.isfinite(a):
            front.append(i)
    return sorted(front, key=lambda i: energy[i])


def _save(fig, out: Path, stem: str) -> list[Path]:
    files = [out / f"{stem}.png", out / f"{stem}.svg"]
    fig.savefig(files[0], dpi=130)
    fig.savefig(files[1])
    _pyplot().close(fig)
    return files


def _style(algorithm: str, setting: str, algorithms: list[str]) -> dict:
    """The same look in every figure: colour = algorithm, line and marker = GradSamp setting
    (full training solid circles, the skip control dotted squares, samplers dashed triangles)."""
    colour = _pyplot().get_cmap("tab10")(sorted(algorithms).index(algorithm) % 10)
    if setting == "full":
        return {"color": colour, "linestyle": "-", "marker": "o"}
    if setting == "skip":
        return {"color": colour, "linestyle": ":", "marker": "s"}
    return {"color": colour, "linestyle": "--", "marker": "^"}


def _energy_label(sources: str) -> str:
    kind = {s.split(":", 1)[0].strip() for s in sources.split(",") if s.strip()}
    return "estimated" if kind == {"estimated"} else "measured" if kind == {"measured"} else "MIXED sources"


def plot_pareto(summary: pd.DataFrame, dataset: str, out: Path) -> list[Path]:
    plt = _pyplot()
    s = summary[summary.dataset == dataset].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    x, y = list(s["total_J"]), list(s["acc:Avg"])
    algorithms = list(s["algorithm"].unique())
    for r in s.sort_values(["algorithm", "setting"]).to_dict("records"):
        style = _style(r["algorithm"], r["setting"], algorithms)
        ax.errorbar(r["total_J"], r["acc:Avg"], xerr=np.nan_to_num(r["total_J_se"]),
                    yerr=np.nan_to_num(r["se:Avg"]), fmt=style["marker"], color=style["color"],
                    capsize=3, label=f"{r['algorithm']} {r['setting']}")
    front = pareto_front(x, y)
    ax.plot([x[i] for i in front], [y[i] for i in front], "k--", lw=1, alpha=0.6, label="Pareto front")
    ax.scatter([x[i] for i in front], [y[i] for i in front], s=140, facecolors="none", edgecolors="k")
    sources = ", ".join(sorted(set(s["sources"])))
    ax.set(xlabel=f"total energy per run, train + eval (J, {_energy_label(sources)})",
           ylabel="OOD accuracy (%)", title=f"{dataset}: accuracy against energy (mean ± SE over trial seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, f"{dataset}-pareto")


def plot_curves(epochs: pd.DataFrame, selected: pd.DataFrame, dataset: str, out: Path) -> list[Path]:
    plt = _pyplot()
    s = selected[selected.dataset == dataset]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    algorithms = list(s["algorithm"].unique())
    for (algo, setting), g in s.groupby(["algorithm", "setting"]):
        e = epochs[epochs.run_id.isin(set(g["run_id"]))]
        curve = e.groupby("epoch")[["cum_J", "test_acc"]].mean()
        ax.plot(curve["cum_J"], 100 * curve["test_acc"], ms=3, label=f"{algo} {setting}",
                **_style(algo, setting, algorithms))
    sources = ", ".join(sorted(set(s["train_sources"]) | set(s["eval_sources"])))
    ax.set(xlabel=f"cumulative energy, train + eval (J, {_energy_label(sources)})", ylabel="OOD accuracy (%)",
           title=f"{dataset}: accuracy over training (mean of the chosen runs)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, f"{dataset}-curves")


def plot_all(runs: list[Run], selected: pd.DataFrame, summary: pd.DataFrame, out: Path) -> list[Path]:
    """Both figures for every dataset in the summary, from runs already loaded."""
    epochs = epochs_frame(runs)
    files: list[Path] = []
    for dataset in summary["dataset"].unique():
        files += plot_pareto(summary, dataset, out)
        files += plot_curves(epochs, selected, dataset, out)
    return files
