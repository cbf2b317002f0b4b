"""The GradSamp study's heatmap: paired accuracy difference against the skip control, one panel per
algorithm (rows: readings, columns: schedules), one shared diverging colour scale centred on 0, each cell
annotated with mean ± SE, and cells whose Holm-adjusted test is significant boxed and starred. Built
without pyplot, like every dagrad figure (see plots.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from dagrad.analysis.study import BEATS, LOSES, NO_CONTROL, ordered


def _ordered(values: pd.Series) -> list[str]:
    return list(dict.fromkeys(values))


def heatmap_figure(cells: pd.DataFrame, dataset: str, alpha: float, tests: int) -> Figure:
    """The heatmap of one dataset's cells (a `Study.cells` frame)."""
    c = cells[cells.dataset == dataset]
    algorithms, readings, schedules = _ordered(c.algorithm), ordered(c, "reading"), ordered(c, "schedule")
    top = float(np.nanmax(np.abs(c["delta_control"]))) if np.isfinite(c["delta_control"]).any() else 1.0
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-max(top, 0.5), vmax=max(top, 0.5))
    columns = min(len(algorithms), 2)
    rows = math.ceil(len(algorithms) / columns)
    width, height = 1.25 * len(schedules) + 1.9, 0.42 * len(readings) + 1.0
    fig = Figure(figsize=(columns * width + 1.0, rows * height + 1.1), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    cmap = colormaps["RdBu"]
    image = None
    for ax, algorithm in zip(axes, algorithms):
        a = c[c.algorithm == algorithm]
        grid = np.full((len(readings), len(schedules)), np.nan)
        for d in a.to_dict("records"):
            i, j = readings.index(d["reading"]), schedules.index(d["schedule"])
            grid[i, j] = d["delta_control"]
            significant = d["verdict"] in (BEATS, LOSES)
            if np.isfinite(d["delta_control"]):
                se = f"\n±{d['delta_control_se']:.1f}" if np.isfinite(d["delta_control_se"]) else ""
                dark = abs(norm(d["delta_control"]) - 0.5) > 0.3
                mean = d["delta_control"] if round(d["delta_control"], 1) != 0 else 0.0  # no "-0.0"
                ax.text(j, i, f"{mean:+.1f}{'*' if significant else ''}{se}", ha="center",
                        va="center", fontsize=7, color="white" if dark else "black",
                        fontweight="bold" if significant else "normal")
            else:
                ax.text(j, i, "no control" if d["verdict"] == NO_CONTROL else "n<2", ha="center", va="center",
                        fontsize=6)
            if significant:
                ax.add_patch(Rectangle((j - 0.48, i - 0.48), 0.96, 0.96, fill=False, lw=2, ec="black"))
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto")
        ax.set_facecolor("0.9")  # cells the sweep did not run
        ax.set_xticks(range(len(schedules)), schedules, rotation=30, ha="right", fontsize=7)
        ax.set_yticks(range(len(readings)), readings, fontsize=7)
        ax.set_title(algorithm, fontsize=9)
        ax.tick_params(length=0)
    for ax in axes[len(algorithms):]:
        ax.set_visible(False)
    if image is not None:
        bar = fig.colorbar(image, ax=list(axes[:len(algorithms)]), shrink=0.8, pad=0.02)
        bar.set_label("GradSamp − skip control (pp OOD accuracy)", fontsize=8)
    fig.suptitle(f"{dataset}: paired difference against the equal-energy control (mean ± SE over trial seeds)\n"
                 f"* boxed: two-sided paired t-test, Holm–Bonferroni over {tests} cells, adjusted p < {alpha:g}",
                 fontsize=9)
    return fig


def plot_heatmaps(cells: pd.DataFrame, out: Path, alpha: float, tests: int) -> list[Path]:
    """`<dataset>-study.png` and `.svg` for every dataset of the study."""
    files = []
    for dataset in _ordered(cells.dataset):
        fig = heatmap_figure(cells, dataset, alpha, tests)
        stem = out / f"{dataset}-study"
        fig.savefig(f"{stem}.png", dpi=130, bbox_inches="tight")
        fig.savefig(f"{stem}.svg", bbox_inches="tight")
        files += [Path(f"{stem}.png"), Path(f"{stem}.svg")]
    return files
