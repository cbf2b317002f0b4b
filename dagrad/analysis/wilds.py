"""WILDS's metrics and model selection for runs under `data.protocol: wilds`, from the records alone.

A run's header says which dagrad splits make up each WILDS split and which group each belongs to
(`data.protocol_metrics`, written by the dataset; see dagrad.datasets.wilds_protocol), and how big
every split is (`data.split_sizes`). From the per-split accuracies of a checkpoint
(`dagrad.analysis.runs.wilds_figures`):

- `<split>:acc_avg` = the accuracy over all examples of the WILDS split (pooled: sum of acc x n over
  its dagrad splits, divided by their total size), WILDS's `acc_avg`;
- `<split>:acc_worst_group` = the lowest group accuracy among groups with examples, groups listed in
  `exclude_groups` left out (FMoW: worst region, "Other" excluded), WILDS's `acc_worst_region`.

Selection follows WILDS's examples: per run the checkpoint with the best `selection` metric on the
OOD validation split (Camelyon17 and DomainNet: `acc_avg`; FMoW: worst-region accuracy); across hparams
seeds the best of those. Test figures are reported there; mean ± SE over trial seeds.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Optional

import numpy as np
import pandas as pd

from dagrad.analysis.frames import configuration_key, labels
from dagrad.analysis.runs import mean_se
from dagrad.analysis.tables import se_words
from dagrad.analysis.runs import RecordedRun, wilds_figures

#: WILDS split names in the order tables show them, with their headings
SPLIT_TITLES = {"id_val": "ID val", "id_test": "ID test", "val": "OOD val", "test": "test"}
STAT_TITLES = {"acc_avg": "avg", "acc_worst_group": "worst {group}"}


def is_wilds(run: RecordedRun) -> bool:
    return run.header.get("data", {}).get("protocol") == "wilds"


def protocol_metrics(run: RecordedRun) -> dict:
    return run.header.get("data", {}).get("protocol_metrics") or {}


def select_wilds(runs: list[RecordedRun]) -> pd.DataFrame:
    """One row per (dataset, configuration, trial seed): the checkpoint WILDS's selection picks and its
    figures (columns `<split>:<statistic>`)."""
    runs = [r for r in runs if r.complete and is_wilds(r)]
    names = labels(runs)
    groups: dict[tuple, list[RecordedRun]] = defaultdict(list)
    for run in runs:
        groups[(run.dataset, configuration_key(run.resolved), run.trial_seed)].append(run)
    rows = []
    for (dataset, key, trial), members in sorted(groups.items()):
        best: Optional[tuple[float, dict, RecordedRun, object]] = None
        for run in sorted(members, key=lambda r: r.hparams_seed):
            protocol = protocol_metrics(run)
            split, stat = protocol.get("selection", ["val", "acc_avg"])
            sizes = run.header.get("data", {}).get("split_sizes", {})
            for point in run.points():
                figs = wilds_figures(point.metrics, protocol, sizes)
                value = figs.get(f"{split}:{stat}", float("nan"))
                if np.isfinite(value) and (best is None or value > best[0]):
                    best = (value, figs, run, point)
        if best is None:
            continue
        value, figs, run, point = best
        protocol = protocol_metrics(run)
        rows.append({"dataset": dataset, "algorithm": names[key][0], "setting": names[key][1], "config_key": key,
                     "trial_seed": trial, "hparams_seed": run.hparams_seed,
                     "epoch": point.epoch if point.epoch is not None else "averaged", "step": point.step,
                     "selected_by": ":".join(protocol.get("selection", [])),
                     "worst_group": protocol.get("worst_group") or "", **figs, "run_id": run.run_id})
    return pd.DataFrame(rows)


def summarize_wilds(selected: pd.DataFrame, ddof: int = 1) -> pd.DataFrame:
    """Mean ± SE over trial seeds of every WILDS figure, per (dataset, configuration), in percent."""
    rows = []
    stats = [c for c in selected.columns if ":" in c and c != "selected_by"]
    for (dataset, key), g in selected.groupby(["dataset", "config_key"], sort=False):
        row = {"dataset": dataset, "algorithm": g.iloc[0].algorithm, "setting": g.iloc[0].setting,
               "config_key": key, "selected_by": g.iloc[0].selected_by, "worst_group": g.iloc[0].worst_group}
        for col in stats:
            row[col], row[f"se|{col}"], row["n"] = mean_se(100 * g[col], ddof)
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["ddof"] = ddof
    return out


def wilds_table_cells(summary: pd.DataFrame, dataset: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of one dataset's WILDS table: every split's figures that any row has."""
    from dagrad.analysis.tables import pm

    s = summary[summary.dataset == dataset]
    group = next((g for g in s["worst_group"] if g), "group")
    cols = [c for split in SPLIT_TITLES for stat in STAT_TITLES
            if (c := f"{split}:{stat}") in s.columns and s[c].notna().any()]
    header = ["algorithm", "setting"] + [f"{SPLIT_TITLES[c.split(':')[0]]} {STAT_TITLES[c.split(':')[1]]}"
                                         .format(group=group) for c in cols] + ["n", "selected by"]
    rows = [[d["algorithm"], d["setting"], *[pm(d[c], d[f"se|{c}"]) for c in cols], str(int(d["n"])),
             d["selected_by"]] for d in s.to_dict("records")]
    return header, rows


def footer(summary: pd.DataFrame) -> str:
    return ("WILDS protocol: accuracy (%) pooled over each WILDS split (avg) and the worst group's accuracy; the "
            "checkpoint and hparams chosen by the OOD validation figure named under 'selected by', as WILDS's "
            f"examples select; mean ± SE over trial seeds ({se_words(summary.attrs.get('ddof', 1))}).")
