"""Federated runs in the report: accuracy on the domain no client holds, set against the energy training
used and the traffic between the clients and the server.

A federated run records, per round, the bytes the clients received (the global model, to train from and
to evaluate) and sent (their updates, their evaluation reports); its summary line adds them up. For each
configuration of the report's summary this module adds

- `traffic_MB` (`traffic_MB_se`): the clients' traffic over the whole run, received + sent, in megabytes
  (10^6 bytes), averaged over the trial seeds of the runs the selection chose (as the summary's energy);
- `client_rounds`: the rounds in which the clients trained (a server-side GradSamp round has none);
- the federated settings as columns (`lambda`, `clients`, `strategy`, `side`: which side draws, "" without
  GradSamp);

and draws accuracy against energy and against traffic, one column of panels per heterogeneity lambda.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dagrad.analysis.frames import configuration_key
from dagrad.analysis.runs import RecordedRun, mean_se
from dagrad.analysis.tables import energy_unit, markdown_table, pm

MB = 1e6
#: the marker of each (GradSamp sampler kind, side): full training, each side's draw and its skip control
_MARKERS = {("full", ""): "o", ("sampler", "client"): "^", ("skip", "client"): "s",
            ("sampler", "server"): "v", ("skip", "server"): "D"}


def is_federated(run: RecordedRun) -> bool:
    return bool(run.config.get("federated"))


def run_traffic(run: RecordedRun) -> float:
    """The bytes the clients received and sent over the run: its summary's totals, else its rounds' sum."""
    totals = ((run.summary or {}).get("federated") or {}).get("bytes")
    if not totals:
        totals = {}
        for line in run.epochs:
            for key, value in line.get("federated", {}).get("bytes", {}).items():
                totals[key] = totals.get(key, 0) + int(value)
    return float(sum(int(totals.get(key, 0)) for key in ("clients_received", "clients_sent")))


def client_rounds(run: RecordedRun) -> int:
    """Rounds in which at least one client trained (ran local updates)."""
    return sum(any(c.get("kind") == "train" for c in line.get("federated", {}).get("clients", []))
               for line in run.epochs)


def settings(run: RecordedRun) -> dict:
    fed, gs = run.resolved.get("federated") or {}, run.resolved.get("gradsamp") or {}
    sampler = gs.get("sampler", "none")
    return {"lambda": float(fed.get("lambda", np.nan)), "strategy": str(fed.get("strategy", "")),
            "clients": float(fed.get("clients", np.nan)),
            "side": "" if sampler == "none" else str(fed.get("gradsamp_side", "client"))}


def add_traffic(summary: pd.DataFrame, selected: pd.DataFrame, runs: list[RecordedRun], ddof: int) -> pd.DataFrame:
    """`summary` with the traffic columns (see the module docstring) where its runs are federated; the
    summary itself when none is."""
    federated = {str(r.path): r for r in runs if is_federated(r)}
    if not federated or not len(summary):
        return summary
    chosen = selected[selected["path"].isin(federated)]
    per_trial = (chosen.assign(traffic=[run_traffic(federated[p]) / MB for p in chosen["path"]],
                               rounds=[client_rounds(federated[p]) for p in chosen["path"]])
                 .groupby(["dataset", "config_key", "trial_seed"])[["traffic", "rounds"]].mean().reset_index())
    facts = {configuration_key(r.resolved): settings(r) for r in federated.values()}
    out = summary.copy()
    for column in ("traffic_MB", "traffic_MB_se", "client_rounds", "lambda", "clients", "strategy", "side"):
        out[column] = np.nan if column not in ("strategy", "side") else None
    for i, row in out.iterrows():
        t = per_trial[(per_trial.dataset == row.dataset) & (per_trial.config_key == row.config_key)]
        if not len(t):
            continue
        out.loc[i, "traffic_MB"], out.loc[i, "traffic_MB_se"], _ = mean_se(t["traffic"], ddof)
        out.loc[i, "client_rounds"] = float(t["rounds"].mean())
        for key, value in facts[row.config_key].items():
            out.loc[i, key] = value
    return out


def has_traffic(summary: pd.DataFrame) -> bool:
    return "traffic_MB" in summary and bool(summary["traffic_MB"].notna().any())


def traffic_cells(summary: pd.DataFrame, dataset: str) -> tuple[list[str], list[list[str]]]:
    """Accuracy, energy and traffic per federated configuration of `dataset`, mean ± SE over trial seeds."""
    s = summary[(summary.dataset == dataset) & summary["traffic_MB"].notna()]
    unit, scale = energy_unit(s["train_eval_J"])
    header = ["Algorithm", "Setting", "OOD acc (%)", f"Train + eval energy ({unit})", "Traffic (MB)",
              "Rounds the clients trained"]
    rows = [[r.algorithm, r.setting, pm(r["acc:Avg"], r["se:Avg"]),
             pm(r.train_eval_J / scale, r.train_eval_J_se / scale, 2 if scale > 1 else 0),
             pm(r.traffic_MB, r.traffic_MB_se, 1), f"{r.client_rounds:g}"] for _, r in s.iterrows()]
    return header, rows


def traffic_markdown(summary: pd.DataFrame, level: str = "###") -> list[str]:
    """The federated section of a markdown report: one table per dataset with federated runs."""
    out: list[str] = []
    for dataset in summary.loc[summary["traffic_MB"].notna(), "dataset"].unique():
        out += [f"{level} {dataset}: accuracy against energy and traffic (federated)", "",
                *markdown_table(*traffic_cells(summary, dataset)), "",
                "_Traffic: the bytes every client received (the global model, to train from and to evaluate) and "
                "sent (its update and its evaluation report) over the whole run, in MB (10^6 bytes); energy: the "
                "clients' and the server's training and evaluation windows over the whole run; both averaged over "
                "the trial seeds of the selected runs. A server-side GradSamp round has no client training, so "
                "it carries only the evaluation's traffic._", ""]
    return out


def _kind(sampler: str) -> str:
    return "full" if sampler == "none" else "skip" if sampler == "skip" else "sampler"


def federated_figure(summary: pd.DataFrame, dataset: str) -> Figure:
    """One column per lambda: OOD accuracy against train + eval energy (top) and against the clients'
    traffic (bottom), mean ± SE over trial seeds; colour = algorithm and strategy (and the number of
    clients, where it varies), marker = GradSamp
    setting and side (o full, ^ client draw, s client skip, v server draw, D server skip)."""
    from matplotlib import colormaps

    s = summary[(summary.dataset == dataset) & summary["traffic_MB"].notna()].copy()
    several = s["clients"].nunique() > 1
    s["who"] = [f"{a.split(' (')[0]} / {st}" + (f" / {n:g} clients" if several else "")
                for a, st, n in zip(s.algorithm, s.strategy, s["clients"])]
    lambdas, whos = sorted(s["lambda"].unique()), sorted(s["who"].unique())
    unit, scale = energy_unit(s["train_eval_J"])
    fig = Figure(figsize=(3.6 * len(lambdas) + 1.2, 6.4), layout="constrained")
    axes = fig.subplots(2, len(lambdas), squeeze=False, sharey=True)
    for col, lam in enumerate(lambdas):
        for _, r in s[s["lambda"] == lam].iterrows():
            colour = colormaps["tab10"](whos.index(r.who) % 10)
            marker = _MARKERS.get((_kind(r.sampler), r.side or ""), "x")
            for ax, x, xe in ((axes[0, col], r.train_eval_J / scale, r.train_eval_J_se / scale),
                              (axes[1, col], r.traffic_MB, r.traffic_MB_se)):
                ax.errorbar(x, r["acc:Avg"], xerr=_finite(xe), yerr=_finite(r["se:Avg"]), color=colour,
                            marker=marker, markersize=6, linestyle="none", capsize=2, elinewidth=0.8)
        axes[0, col].set_title(f"λ = {lam:g}", fontsize=10)
        axes[0, col].set_xlabel(f"train + eval energy ({unit}, {_sources_word(s)})", fontsize=8)
        axes[1, col].set_xlabel("clients' traffic (MB, received + sent)", fontsize=8)
    for row in axes:
        row[0].set_ylabel("OOD accuracy (%)", fontsize=8)
        for ax in row:
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
    handles = [_handle(fig, colour=colormaps["tab10"](i % 10), marker="o", label=w) for i, w in enumerate(whos)]
    handles += [_handle(fig, colour="black", marker=m, label=_marker_label(k)) for k, m in _MARKERS.items()
                if any((_kind(x), y or "") == k for x, y in zip(s.sampler, s.side))]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5), fontsize=7, frameon=False)
    fig.suptitle(f"{dataset}: federated DG, accuracy on the unseen domain against energy and traffic", fontsize=10)
    return fig


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def _sources_word(s: pd.DataFrame) -> str:
    kinds = {x.split(":", 1)[0].strip() for text in s["sources"] for x in str(text).split(",") if x.strip()}
    return "estimated" if kinds == {"estimated"} else "measured" if kinds == {"measured"} else "MIXED sources"


def _marker_label(key: tuple[str, str]) -> str:
    kind, side = key
    return "full training" if kind == "full" else f"{side}-side {'GradSamp' if kind == 'sampler' else 'skip control'}"


def _handle(fig: Figure, colour, marker: str, label: str):
    from matplotlib.lines import Line2D

    return Line2D([], [], color=colour, marker=marker, linestyle="none", label=label)
