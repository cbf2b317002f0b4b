"""Accuracy-vs-energy figures (PNG and SVG, matplotlib Agg), drawn only from records.

- `<dataset>-pareto`: OOD accuracy against train + eval energy per configuration, SE error bars on both axes,
  the Pareto front (no other configuration is both cheaper and more accurate) marked. When the runs used
  several precisions (a GPU study's precision axis), one panel per algorithm with colour = precision and
  marker = GradSamp setting, so cheaper arithmetic and sampled epochs are seen side by side.
- `<dataset>-curves`: OOD accuracy against cumulative energy over epochs, the mean curve over the
  chosen runs of each configuration.
- `<dataset>-federated`: for federated runs, OOD accuracy against energy and against the clients' traffic,
  one column per heterogeneity lambda (dagrad.analysis.federated).
- `run_figure`: one run's accuracy and cumulative energy over its epochs (the API's `Run.plot()`).

Figures are built without pyplot (`matplotlib.figure.Figure`): nothing global is opened or switched,
so the CLI stays headless and a notebook keeps its own backend; `*_figure` functions return them,
`plot_*` functions save them."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from dagrad.analysis.federated import federated_figure, has_traffic
from dagrad.analysis.frames import epochs_frame
from dagrad.analysis.runs import RecordedRun
from dagrad.run.numerics import PRECISION_TABLE


def pareto_front(energy: list[float], accuracy: list[float]) -> list[int]:
    """Indices of points no other point dominates (lower or equal energy and higher accuracy)."""
    front = []
    for i, (e, a) in enumerate(zip(energy, accuracy)):
        dominated = any((e2 <= e and a2 > a) or (e2 < e and a2 >= a)
                        for j, (e2, a2) in enumerate(zip(energy, accuracy)) if j != i)
        if not dominated and np.isfinite(e) and np.isfinite(a):
            front.append(i)
    return sorted(front, key=lambda i: energy[i])


def _save(fig: Figure, out: Path, stem: str) -> list[Path]:
    files = [out / f"{stem}.png", out / f"{stem}.svg"]
    fig.savefig(files[0], dpi=130)
    fig.savefig(files[1])
    return files


def _style(algorithm: str, setting: str, algorithms: list[str]) -> dict:
    """The same look in every figure: colour = algorithm, line and marker = GradSamp setting
    (full training solid circles, the skip control dotted squares, samplers dashed triangles)."""
    colour = colormaps["tab10"](sorted(algorithms).index(algorithm) % 10)
    if setting == "full":
        return {"color": colour, "linestyle": "-", "marker": "o"}
    if setting == "skip":
        return {"color": colour, "linestyle": ":", "marker": "s"}
    return {"color": colour, "linestyle": "--", "marker": "^"}


#: more legend entries than this go below the axes, the figure growing to hold them, so a sweep with many
#: settings keeps a readable plot
LEGEND_INSIDE = 8


def _legend(fig: Figure, ax: Axes, fontsize: int = 7) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if len(labels) <= LEGEND_INSIDE:
        ax.legend(fontsize=fontsize)
        return
    ncol = 2 if max(map(len, labels)) <= 60 else 1
    rows = -(-len(labels) // ncol)
    fig.set_size_inches(fig.get_figwidth() * (1.5 if ncol == 2 else 1.4), fig.get_figheight() + 0.15 * rows)
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=6, frameon=False)


def _energy_label(sources: str) -> str:
    kind = {s.split(":", 1)[0].strip() for s in sources.split(",") if s.strip()}
    return "estimated" if kind == {"estimated"} else "measured" if kind == {"measured"} else "MIXED sources"


#: one colour per precision, in the order dagrad.run.numerics declares them (a new precision gets the next)
PRECISION_COLOURS = dict(zip(PRECISION_TABLE, ("tab:gray", "tab:blue", "tab:orange", "tab:green", "tab:red",
                                               "tab:brown", "tab:pink", "tab:olive", "tab:cyan")))


def without_precision(algorithm: str) -> str:
    """An algorithm label (frames.labels: "ERM (precision=bf16, x=1)") without its precision part."""
    head, sep, rest = algorithm.partition(" (")
    if not sep:
        return algorithm
    kept = [part for part in rest.rstrip(")").split(", ") if not part.startswith("precision=")]
    return head + (f" ({', '.join(kept)})" if kept else "")


def pareto_figure(summary: pd.DataFrame, dataset: str, precisions: Optional[dict[str, str]] = None) -> Figure:
    """Accuracy against energy per configuration. `precisions` (configuration key -> precision label): when
    the dataset's runs used more than one, one panel per algorithm, colour = precision, marker = GradSamp
    setting (full training, skip control, sampler), so precision and sampled epochs show side by side."""
    s = summary[summary.dataset == dataset].reset_index(drop=True)
    if precisions and len({precisions.get(k) for k in s.config_key}) > 1:
        return _pareto_by_precision(s, dataset, precisions)
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.subplots()
    x, y = list(s["train_eval_J"]), list(s["acc:Avg"])
    algorithms = list(s["algorithm"].unique())
    for r in s.sort_values(["algorithm", "setting"]).to_dict("records"):
        style = _style(r["algorithm"], r["setting"], algorithms)
        ax.errorbar(r["train_eval_J"], r["acc:Avg"], xerr=np.nan_to_num(r["train_eval_J_se"]),
                    yerr=np.nan_to_num(r["se:Avg"]), fmt=style["marker"], color=style["color"],
                    capsize=3, label=f"{r['algorithm']} {r['setting']}")
    front = pareto_front(x, y)
    ax.plot([x[i] for i in front], [y[i] for i in front], "k--", lw=1, alpha=0.6, label="Pareto front")
    ax.scatter([x[i] for i in front], [y[i] for i in front], s=140, facecolors="none", edgecolors="k")
    sources = ", ".join(sorted(set(s["sources"])))
    ax.set(xlabel=f"energy per run, train + eval (J, {_energy_label(sources)})",
           ylabel="OOD accuracy (%)", title=f"{dataset}: accuracy against energy (mean ± SE over trial seeds)")
    ax.grid(alpha=0.3)
    _legend(fig, ax)
    return fig


def _pareto_by_precision(s: pd.DataFrame, dataset: str, precisions: dict[str, str]) -> Figure:
    algorithms = list(dict.fromkeys(without_precision(a) for a in s.algorithm))
    fig = Figure(figsize=(5.2 * len(algorithms), 4.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(algorithms), sharey=True, squeeze=False)).ravel()
    for ax, algorithm in zip(axes, algorithms):
        a = s[[without_precision(x) == algorithm for x in s.algorithm]].sort_values(["setting"])
        for r in a.to_dict("records"):
            precision = precisions.get(r["config_key"], "?")
            style = _style(algorithm, r["setting"], algorithms)
            colour = PRECISION_COLOURS.get(precision.split(" ")[0], "tab:purple")
            ax.errorbar(r["train_eval_J"], r["acc:Avg"], xerr=np.nan_to_num(r["train_eval_J_se"]),
                        yerr=np.nan_to_num(r["se:Avg"]), fmt=style["marker"], color=colour, capsize=3,
                        mfc="white" if r["setting"] == "skip" else colour, label=f"{precision} · {r['setting']}")
        x, y = list(a["train_eval_J"]), list(a["acc:Avg"])
        front = pareto_front(x, y)
        ax.plot([x[i] for i in front], [y[i] for i in front], "k--", lw=1, alpha=0.6, label="Pareto front")
        sources = ", ".join(sorted(set(a["sources"])))
        ax.set(title=algorithm, xlabel=f"energy per run, train + eval (J, {_energy_label(sources)})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    axes[0].set_ylabel("OOD accuracy (%)")
    fig.suptitle(f"{dataset}: accuracy against energy by precision (colour) and GradSamp setting (marker: "
                 "● full, □ skip control, ▲ sampler); mean ± SE over trial seeds", fontsize=9)
    return fig


def precision_labels(selected: pd.DataFrame) -> dict[str, str]:
    """configuration key -> its runs' precision ("bf16 + channels_last"), from the record headers."""
    if "precision" not in selected:
        return {}
    out = {}
    for key, g in selected.groupby("config_key"):
        names = {p + (" + channels_last" if c else "") for p, c in
                 zip(g["precision"], g["channels_last"] if "channels_last" in g else [False] * len(g))}
        out[key] = " / ".join(sorted(names))
    return out


def plot_pareto(summary: pd.DataFrame, dataset: str, out: Path, precisions: Optional[dict[str, str]] = None
                ) -> list[Path]:
    return _save(pareto_figure(summary, dataset, precisions), out, f"{dataset}-pareto")


def curves_figure(epochs: pd.DataFrame, selected: pd.DataFrame, dataset: str) -> Figure:
    s = selected[selected.dataset == dataset]
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.subplots()
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
    _legend(fig, ax)
    return fig


def plot_curves(epochs: pd.DataFrame, selected: pd.DataFrame, dataset: str, out: Path) -> list[Path]:
    return _save(curves_figure(epochs, selected, dataset), out, f"{dataset}-curves")


def run_figure(epochs: pd.DataFrame, title: str) -> Figure:
    """Accuracy (OOD, training-domain validation, SWAD's average when present) and cumulative energy by
    phase over one run's epochs, sampled and skipped epochs marked; `epochs` is the API's `Run.epochs` frame."""
    fig = Figure(figsize=(10, 3.8))
    acc, energy = fig.subplots(1, 2)
    x = epochs["epoch"]
    acc.plot(x, 100 * epochs["ood_acc"], "o-", ms=3, label="OOD (test environments, in)")
    acc.plot(x, 100 * epochs["val_acc"], "s--", ms=3, label="validation (training environments, out)")
    if "averaged_ood_acc" in epochs:
        acc.plot(x, 100 * epochs["averaged_ood_acc"], "^:", ms=3, label="OOD, averaged model")
    for kind, marker, label in (("sampled", "v", "sampled epochs (GradSamp)"),
                                ("skipped", "x", "skipped epochs (control)")):
        marked = epochs[epochs["kind"] == kind]
        if len(marked):
            acc.plot(marked["epoch"], 100 * marked["ood_acc"], marker, color="k", ms=7, fillstyle="none", label=label)
    acc.set(xlabel="epoch (0-based)", ylabel="accuracy (%)", title="accuracy")
    sources = {s.strip() for col in ("train_sources", "eval_sources") for text in epochs[col]
               for s in str(text).split(",") if s.strip()}
    energy.plot(x, epochs["cum_train_J"], "o-", ms=3, label="train")
    energy.plot(x, epochs["cum_eval_J"], "s--", ms=3, label="eval")
    energy.plot(x, epochs["cum_J"], "k-", lw=1, label="train + eval")
    energy.set(xlabel="epoch (0-based)", ylabel=f"cumulative energy (J, {_energy_label(', '.join(sorted(sources)))})",
               title="energy")
    for ax in (acc, energy):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_all(runs: list[RecordedRun], selected: pd.DataFrame, summary: pd.DataFrame, out: Path) -> list[Path]:
    """Both figures for every dataset in the summary, from runs already loaded."""
    epochs = epochs_frame(runs)
    files: list[Path] = []
    precisions = precision_labels(selected)
    for dataset in summary["dataset"].unique():
        files += plot_pareto(summary, dataset, out, precisions)
        files += plot_curves(epochs, selected, dataset, out)
        if has_traffic(summary[summary.dataset == dataset]):
            files += _save(federated_figure(summary, dataset), out, f"{dataset}-federated")
    return files
