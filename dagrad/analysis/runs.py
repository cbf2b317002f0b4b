"""Runs read from their record files: the one place where records become objects for tables and plots.

A `RecordedRun` is a record file's header, epochs and summary. It offers the candidate models a selection
method may pick (`points`: epochs, or SWAD's final average) and the figures a summary line needs
(`summary_figures`), all computed from the records, nothing typed in by hand.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from dagrad.utils.errors import RecordsError
from dagrad.records.metrics import env_mean
from dagrad.records.values import UNREADABLE, energy_joules, phase_energy, reading_energy  # noqa: F401 (re-exported)
from dagrad.records.files import find_runs, read_records, split_run


def mean_se(values: Iterable[Optional[float]], ddof: int = 1) -> tuple[float, float, int]:
    """Mean, standard error and count of the finite values: SE = std(ddof) / sqrt(n). ddof 1 (the sample
    std) is dagrad's default; DomainBed's collect_results uses ddof 0. SE is nan when n <= ddof (one value
    with ddof 1); with ddof 0 one value has SE 0, as np.std gives in collect_results."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return float("nan"), float("nan"), 0
    mean = sum(finite) / len(finite)
    if len(finite) <= ddof:
        return mean, float("nan"), len(finite)
    var = sum((v - mean) ** 2 for v in finite) / (len(finite) - ddof)
    return mean, math.sqrt(var / len(finite)), len(finite)


@dataclass
class Point:
    """A model a selection method may pick: an epoch's online model, or a run's final averaged model."""

    step: int
    epoch: Optional[int]  # None: the summary line's averaged model (SWAD)
    metrics: dict
    cum_train_J: float  # energy spent up to and including this point
    cum_eval_J: float
    train_sources: frozenset
    eval_sources: frozenset


@dataclass
class RecordedRun:
    path: Path
    header: dict
    epochs: list[dict]
    summary: Optional[dict]

    @property
    def config(self) -> dict:
        return self.header.get("config", {})

    @property
    def resolved(self) -> dict:
        """The canonical configuration (options filled in); records before format 2 only have `config`."""
        return self.header.get("resolved") or self.config

    @property
    def run_id(self) -> str:
        return str(self.header.get("run_id") or self.path.parent.name)

    @property
    def dataset(self) -> str:
        return self.config.get("data", {}).get("name", "?")

    @property
    def test_envs(self) -> tuple[int, ...]:
        return tuple(self.header.get("data", {}).get("test_envs", []))

    @property
    def train_envs(self) -> list[int]:
        return list(self.header.get("data", {}).get("train_envs", []))

    @property
    def environments(self) -> list[str]:
        return list(self.header.get("data", {}).get("environments", []))

    @property
    def trial_seed(self) -> int:
        return int(self.config.get("trial_seed", 0))

    @property
    def hparams_seed(self) -> int:
        return int(self.config.get("algorithm", {}).get("hparams_seed", 0))

    @property
    def complete(self) -> bool:
        return self.summary is not None

    @property
    def averaged(self) -> bool:
        return bool(self.summary and self.summary.get("reported") == "averaged" and self.summary.get("metrics"))

    def points(self) -> list[Point]:
        """Candidate models in order; a SWAD run offers only its final averaged model (as SWAD reports)."""
        points, train, evals, t_src, e_src = [], 0.0, 0.0, set(), set()
        for record in self.epochs:
            joules, src = phase_energy(record, "train")
            train, t_src = train + joules, t_src | src
            joules, src = phase_energy(record, "eval")
            evals, e_src = evals + joules, e_src | src
            points.append(Point(record["step"], record["epoch"], record["metrics"], train, evals,
                                frozenset(t_src), frozenset(e_src)))
        if self.averaged:  # settling the average (BatchNorm re-estimation) is training; its evaluation is eval
            settle, settle_src = reading_energy(self.summary.get("averaging_energy"))
            joules, src = reading_energy(self.summary.get("final_eval_energy"))
            step = self.epochs[-1]["step"] if self.epochs else 0
            return [Point(step, None, self.summary["metrics"], train + settle, evals + joules,
                          frozenset(t_src | settle_src), frozenset(e_src | src))]
        return points

    @property
    def numerics(self) -> dict:
        """Precision and determinism the run used, from its header (runs recorded before these settings
        existed ran PyTorch's defaults with deterministic cuDNN)."""
        given = self.header.get("numerics") or {}
        return {"precision": given.get("precision", self.config.get("precision", "torch_default")),
                "deterministic": given.get("deterministic", self.config.get("deterministic", True)),
                "channels_last": bool(given.get("channels_last", self.config.get("channels_last", False)))}

    def dynamic_energy(self) -> tuple[float, float]:
        """(train, eval) joules of the whole run net of idle power (gross - idle watts x seconds, window by
        window, with the idle power measured once per job); nan without a baseline or with an unreadable
        component. Phases as in `points()`: SWAD's settling counts as train, its final evaluation as eval."""
        from dagrad.energy.ledger import dynamic_joules

        idle = self.header.get("idle_power")
        windows = [((r.get("energy") or {}).get("train"), (r.get("energy") or {}).get("eval")) for r in self.epochs]
        if self.averaged:
            windows.append((self.summary.get("averaging_energy"), self.summary.get("final_eval_energy")))
        totals = [0.0, 0.0]
        for pair in windows:
            for k, reading in enumerate(pair):
                if reading is None:
                    continue
                joules = dynamic_joules(reading, idle)
                if joules is None:
                    return math.nan, math.nan
                totals[k] += joules
        return totals[0], totals[1]

    def final_metrics(self) -> dict:
        """The reported model's metrics: SWAD's final average, else the last epoch's online model."""
        return (self.summary or {}).get("metrics") or (self.epochs[-1]["metrics"] if self.epochs else {})

    def summary_figures(self) -> dict[str, Any]:
        """What a run's summary line shows: the final model's OOD accuracy (mean over the test envs' `in`
        splits; under a dataset's own protocol, its pooled test accuracy) and training-domain validation
        accuracy, energy by phase with sources, updates, time."""
        final = self.final_metrics()
        last = self.points()[-1] if self.epochs else None
        ood, val = env_mean(final, self.test_envs, "in"), env_mean(final, self.train_envs, "out")
        protocol = self.header.get("data", {}).get("protocol_metrics")
        if protocol:  # e.g. WILDS: the pooled test and in-distribution validation accuracies
            figs = wilds_figures(final, protocol, self.header["data"].get("split_sizes", {}))
            ood = figs.get("test:acc_avg", ood)
            val = figs.get("id_val:acc_avg", figs.get("id_test:acc_avg", val))
        return {
            "ood_acc": ood, "val_acc": val,
            "train_J": last.cum_train_J if last else 0.0, "eval_J": last.cum_eval_J if last else 0.0,
            "train_sources": sorted(last.train_sources) if last else [],
            "eval_sources": sorted(last.eval_sources) if last else [],
            "updates": self.epochs[-1]["updates"] if self.epochs else 0,
            "seconds": sum(r.get("seconds", 0.0) for r in self.epochs),
            "reported": (self.summary or {}).get("reported", "online"),
        }


def wilds_figures(metrics: dict, protocol: dict, sizes: dict) -> dict[str, float]:
    """WILDS's figures of one checkpoint (see dagrad.analysis.wilds), by `<split>:<statistic>`."""
    out: dict[str, float] = {}
    groups, excluded = protocol.get("groups", {}), set(protocol.get("exclude_groups", []))
    for split, members in protocol.get("splits", {}).items():
        sized = [(metrics.get(f"{m}_acc"), sizes.get(m, 0)) for m in members]
        sized = [(a, n) for a, n in sized if a is not None and n and np.isfinite(a)]
        total = sum(n for _, n in sized)
        out[f"{split}:acc_avg"] = sum(a * n for a, n in sized) / total if total else float("nan")
        if protocol.get("worst_group"):
            by_group: dict[str, list] = defaultdict(lambda: [0.0, 0])
            for m in members:
                a, n = metrics.get(f"{m}_acc"), sizes.get(m, 0)
                if m in groups and groups[m] not in excluded and a is not None and n:
                    by_group[groups[m]][0] += a * n
                    by_group[groups[m]][1] += n
            accs = [c / n for c, n in by_group.values() if n]
            out[f"{split}:acc_worst_group"] = min(accs) if accs else float("nan")
    return out


def read_run(path: str | Path) -> RecordedRun:
    """One run from its folder or its record file."""
    path = Path(path)
    if path.is_dir():
        path = path / "records.jsonl"
    header, epochs, summary = split_run(read_records(path))
    return RecordedRun(path, header, epochs, summary)


def read_runs(root: str | Path | Iterable[str | Path]) -> list[RecordedRun]:
    """Every run below a folder (or the given record files), in path order. A record file that cannot be
    read is skipped with a warning naming it, so one bad file never hides the other runs."""
    paths = find_runs(root) if isinstance(root, (str, Path)) else [Path(p) for p in root]
    runs = []
    for path in paths:
        try:
            run = read_run(path)
        except RecordsError as exc:
            warnings.warn(f"skipping an unreadable record file: {exc}")
            continue
        if run.header:
            runs.append(run)
    return runs
