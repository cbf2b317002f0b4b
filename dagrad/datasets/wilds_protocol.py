"""WILDS's own protocol (`data.protocol: wilds`) for Camelyon17, FMoW and DomainNet, read from the
release's metadata files as WILDS 2.0 reads them (wilds/datasets/*_dataset.py), without the package.

Environments are WILDS's training domains (the `groupby_fields` of WILDS's example configs); a held-out
environment is one WILDS never trains on. Each environment's `in` split is what WILDS trains on (or, held
out, what it scores), its `out` split WILDS's in-distribution validation where WILDS has one. The metrics
(WILDS's `eval()`: pooled accuracy and, for FMoW, worst-region accuracy) are made from the per-split
accuracies and sizes in the records, as `ProtocolSplits.metrics` declares (see dagrad.analysis.wilds).

- Camelyon17 (`official` scheme): hospitals 0-4. Validation (OOD) = hospital 1, test = hospital 2
  (`VAL_CENTER = 1`, `TEST_CENTER = 2` in WILDS's camelyon17_dataset.py; the WILDS paper numbers the
  hospitals from 1 and calls the test hospital 5). Hospitals 0, 3, 4 train on their rows with split 0 and
  validate in-distribution on split 1 (`id_val`). Model selection: OOD validation accuracy (`acc_avg`).
- FMoW (`official` = `time_after_2016`): training domains are years (WILDS groups by year), 2002-2012;
  the OOD splits are by time: validation = 2013-2015 images of the `val` split, test = 2016 and later of
  the `test` split; `id_val` = pre-2013 images of the `val` split; `seq` images are dropped. The held-out
  images form one environment per (OOD split, region), so the worst-region accuracy (the minimum over
  regions with images, "Other" excluded, as WILDS) comes from their accuracies. Model selection: OOD
  validation worst-region accuracy (`acc_worst_region`). Not used: `id_test` (pre-2013 `test` images),
  worst-year accuracy.
- DomainNet (`official`): one source and one target domain (options source_domain, target_domain;
  default real -> sketch as WILDS's example config, whose dataset class defaults to sketch -> real).
  Source: `in` = official train (WILDS `train`), `out` = official test (`id_test`); target: `in` =
  official test (`test`), `out` = official train (`val`, OOD). Model selection: OOD validation `acc_avg`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dagrad.datasets.base import ProtocolSplits
from dagrad.utils.errors import DataError

CAMELYON_VAL_CENTER, CAMELYON_TEST_CENTER = 1, 2
FMOW_OOD_VAL_FROM, FMOW_OOD_TEST_FROM = 2013, 2016  # time_after_2016: test from 2016, val the 3 years before


def _splits_of(groups: dict, names: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.asarray(groups[n]["in"], dtype=np.int64), np.asarray(groups[n]["out"], dtype=np.int64))
            for n in names]


def camelyon17_protocol(rows: list[dict], path: Path) -> tuple[list[str], dict, ProtocolSplits]:
    """rows: one dict per metadata row with `center`, `split` and the row's position `k` within its
    hospital. Returns (environment names, per-env in/out positions, the protocol)."""
    groups: dict[str, dict] = {}
    for number, row in enumerate(rows, 2):
        center, env = row["center"], f"hospital_{row['center']}"
        group = groups.setdefault(env, {"in": [], "out": []})
        if center in (CAMELYON_VAL_CENTER, CAMELYON_TEST_CENTER):
            group["in"].append(row["k"])
        elif row["split"] in (0, 1):
            group["in" if row["split"] == 0 else "out"].append(row["k"])
        else:
            raise DataError(f"{path}:{number}: split {row['split']!r} in a training hospital; WILDS's Camelyon17 "
                            "metadata has 0 (train) or 1 (id_val) there")
    names = sorted(groups, key=lambda e: int(e.split("_")[1]))
    for needed in (CAMELYON_VAL_CENTER, CAMELYON_TEST_CENTER):
        if f"hospital_{needed}" not in groups:
            raise DataError(f"{path}: no rows for hospital {needed}, which WILDS holds out "
                            f"({'validation' if needed == CAMELYON_VAL_CENTER else 'test'})")
    index = {n: i for i, n in enumerate(names)}
    held = {index[f"hospital_{CAMELYON_VAL_CENTER}"], index[f"hospital_{CAMELYON_TEST_CENTER}"]}
    train = [i for i in range(len(names)) if i not in held]
    metrics = {"splits": {"id_val": [f"env{i}_out" for i in train],
                          "val": [f"env{index[f'hospital_{CAMELYON_VAL_CENTER}']}_in"],
                          "test": [f"env{index[f'hospital_{CAMELYON_TEST_CENTER}']}_in"]},
               "groups": {}, "worst_group": None, "exclude_groups": [], "selection": ["val", "acc_avg"]}
    return names, groups, ProtocolSplits("wilds", train, _splits_of(groups, names), metrics)


def utc_year(timestamp: str, where: str) -> datetime:
    """A metadata timestamp as an aware UTC datetime (naive ones are taken as UTC, as pandas does)."""
    text = timestamp.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DataError(f"{where}: timestamp {timestamp!r} is not an ISO date") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def fmow_protocol(rows: list[dict], regions: list[str], path: Path) -> tuple[list[str], dict, ProtocolSplits]:
    """rows: one dict per non-`seq` metadata row with `row` (its number in the full CSV), `split`,
    `timestamp`, `region` (index), `y`. Returns (environment names, per-env groups of row dicts with
    in/out positions into `members`, the protocol)."""
    val_from = datetime(FMOW_OOD_VAL_FROM, 1, 1, tzinfo=timezone.utc)
    test_from = datetime(FMOW_OOD_TEST_FROM, 1, 1, tzinfo=timezone.utc)
    years: dict[int, dict] = {}
    held: dict[tuple[str, int], dict] = {}
    for row in rows:
        moment = utc_year(row["timestamp"], f"{path}:{row['row'] + 2}")
        if moment >= test_from:
            group = held.setdefault(("test", row["region"]), {"members": [], "in": [], "out": []}) \
                if row["split"] == "test" else None
        elif moment >= val_from:
            group = held.setdefault(("val", row["region"]), {"members": [], "in": [], "out": []}) \
                if row["split"] == "val" else None
        elif row["split"] in ("train", "val"):
            group = years.setdefault(moment.year, {"members": [], "in": [], "out": []})
        else:
            group = None  # id_test (pre-2016 test images), and OOD-period images outside WILDS's splits
        if group is not None:
            group["in" if row["split"] != "val" or moment >= val_from else "out"].append(len(group["members"]))
            group["members"].append(row)
    years = {y: g for y, g in years.items() if g["in"]}  # a year with id_val images only cannot train
    if not years:
        raise DataError(f"{path}: no training images (split 'train' before {FMOW_OOD_VAL_FROM})")
    groups: dict[str, dict] = {f"year_{y}": years[y] for y in sorted(years)}
    for part in ("val", "test"):
        for region in sorted(r for p, r in held if p == part):
            groups[f"{part}_{regions[region]}"] = held[(part, region)]
    names = list(groups)
    train = list(range(len(years)))
    env_split = {n: f"env{i}_in" for i, n in enumerate(names)}
    metrics = {"splits": {"id_val": [f"env{i}_out" for i in train],
                          "val": [env_split[n] for n in names if n.startswith("val_")],
                          "test": [env_split[n] for n in names if n.startswith("test_")]},
               "groups": {env_split[n]: n.split("_", 1)[1] for n in names if not n.startswith("year_")},
               "worst_group": "region", "exclude_groups": ["Other"], "selection": ["val", "acc_worst_group"]}
    return names, groups, ProtocolSplits("wilds", train, _splits_of(groups, names), metrics)


def domain_net_protocol(split_of: dict[str, list[bool]], source: str, target: str,
                        path: Path) -> ProtocolSplits:
    """split_of: per domain, True for each official-train row. Environments [source, target]."""
    for domain in (source, target):
        if not split_of.get(domain):
            raise DataError(f"{path}: no rows for domain {domain!r}")
    src, tgt = np.asarray(split_of[source]), np.asarray(split_of[target])
    splits = [(np.flatnonzero(src), np.flatnonzero(~src)), (np.flatnonzero(~tgt), np.flatnonzero(tgt))]
    metrics = {"splits": {"id_test": ["env0_out"], "val": ["env1_out"], "test": ["env1_in"]},
               "groups": {}, "worst_group": None, "exclude_groups": [], "selection": ["val", "acc_avg"]}
    return ProtocolSplits("wilds", [0], splits, metrics)
