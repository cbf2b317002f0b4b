"""The GradSamp study: a sweep laid out as algorithm x reading x schedule, each cell tested against its
equal-energy control.

A *cell* is one GradSamp configuration: an algorithm (with its averaging, e.g. "ERM + SWAD", and any other
setting that varies, e.g. the precision), a *reading* (the sampler with its options, "tensor α=0.5") and a
*schedule* (with its options, "every 3", "random p=0.3"). Each cell is compared, paired by trial seed, with
its control, the `skip` run that differs only in how the step is drawn (`frames.control_key`: same
schedule, so the same epochs are skipped and the same energy is spent), and with the same algorithm's full
training. Accuracies come from the report's model selection (`selection.select`) and are averaged over the
test environments per trial seed (`report.per_trial`), exactly as in the report's tables.

The verdict rule: a two-sided paired t-test (scipy's t distribution, n - 1 degrees of freedom, the sample
standard deviation) on the per-trial-seed differences cell - control, at level alpha (0.05), with the
Holm-Bonferroni correction over every cell of the study that has a control and at least two paired seeds.
A cell "beats the control" when its Holm-adjusted p-value is below alpha and the mean difference is
positive, "loses to the control" when it is below alpha and negative, else "no clear difference".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from dagrad.analysis.report import expected_envs
from dagrad.analysis.frames import configuration_key
from dagrad.analysis.runs import mean_se
from dagrad.analysis.tables import SE_DDOF, per_trial, summarize, with_run_facts
from dagrad.analysis.runs import RecordedRun
from dagrad.analysis.selection import METHODS, select
from dagrad.utils.errors import ConfigError, DataError
from dagrad.registry import value_text

ALPHA = 0.05
BEATS, LOSES, UNCLEAR = "beats the control", "loses to the control", "no clear difference"
UNDECIDED = "undecided (fewer than 2 paired trial seeds)"
NO_CONTROL = "no control (no skip run with the same schedule)"
PAPER_READINGS = ("tensor", "element", "ggd", "extrapolate")
#: GradSamp settings the reading and schedule labels already say
_LABELLED = ("sampler", "sampler_options", "schedule", "schedule_options", "max_consecutive")


@dataclass
class Study:
    """`cells`: one row per GradSamp configuration (see the module docstring); `references`: the full-training
    and skip-control rows the cells are compared with; `tests`: how many cells the Holm correction spans."""

    cells: pd.DataFrame
    references: pd.DataFrame
    selection: str
    ddof: int
    alpha: float
    tests: int
    sources: str


def paired_test(differences: list[float]) -> tuple[float, float]:
    """(t, two-sided p) of a paired t-test on the differences (sample std, n - 1 degrees of freedom); with
    no spread at all, p is 0 for a nonzero mean and 1 for a zero one; nan below two differences."""
    n = len(differences)
    if n < 2:
        return math.nan, math.nan
    mean, sd = float(np.mean(differences)), float(np.std(differences, ddof=1))
    if sd == 0.0:
        return (math.copysign(math.inf, mean), 0.0) if mean != 0 else (0.0, 1.0)
    t = mean / (sd / math.sqrt(n))
    return t, float(2 * stats.t.sf(abs(t), n - 1))


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1); nan entries stay nan and do
    not count as tests."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if np.isfinite(p))
    out, running, m = [math.nan] * len(p_values), 0.0, len(tested)
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def holm_verdict(mean: float, p_adjusted: float, alpha: float = ALPHA) -> str:
    if not np.isfinite(p_adjusted):
        return UNDECIDED
    if p_adjusted < alpha:
        return BEATS if mean > 0 else LOSES
    return UNCLEAR


def ordered(cells: pd.DataFrame, kind: str) -> list[str]:
    """The readings or schedules (`kind`) of these cells in the study's order."""
    return list(cells.sort_values(f"{kind}_rank")[kind].drop_duplicates())


def _component_label(registry: Any, base: type, name: str, options: dict) -> str:
    """The registered component's own label for these options; a plugin's component that is not registered
    in this process is labelled as its `base` class labels, every option shown."""
    try:
        entry = registry.get(name)
    except ConfigError:
        return type(base.__name__, (base,), {"name": name}).label(options, None)
    return entry.load().label(options, entry.defaults())


def reading_label(gradsamp: dict) -> str:
    """The sampler's label: "ema α=0.5 decay=0.8" (see `Sampler.label`)."""
    from dagrad.gradsamp.samplers import SAMPLERS, Sampler

    return _component_label(SAMPLERS, Sampler, gradsamp.get("sampler", "none"),
                            dict(gradsamp.get("sampler_options") or {}))


def schedule_label(gradsamp: dict) -> str:
    """The schedule's label ("every 3", "every 3 from 4", "random p=0.3", "epochs 3,6,9"; see each
    schedule's `label`), and the cap on sampled epochs in a row when there is one."""
    from dagrad.gradsamp.schedules import SCHEDULES, Schedule

    text = _component_label(SCHEDULES, Schedule, gradsamp.get("schedule", "periodic"),
                            dict(gradsamp.get("schedule_options") or {}))
    if gradsamp.get("max_consecutive") is not None:
        text += f" (≤{gradsamp['max_consecutive']} in a row)"
    return text


def _schedule_order(gradsamp: dict) -> tuple:
    name, options = gradsamp.get("schedule", ""), gradsamp.get("schedule_options") or {}
    rank = {"periodic": 0, "random": 1, "epochs": 2}.get(name, 3)
    return rank, name, options.get("start", 0), options.get("every", 0), options.get("probability", 0.0)


def _reading_order(gradsamp: dict) -> tuple:
    name = gradsamp.get("sampler", "")
    rank = PAPER_READINGS.index(name) if name in PAPER_READINGS else len(PAPER_READINGS)
    return rank, name, (gradsamp.get("sampler_options") or {}).get("scale", 1.0)


def _differences(trials: pd.DataFrame, a: str, b: str) -> pd.Series:
    x = trials[trials.config_key == a].set_index("trial_seed")["acc"]
    y = trials[trials.config_key == b].set_index("trial_seed")["acc"]
    return (x - y).dropna().sort_index()


def build_study(runs: list[RecordedRun], selection: str = "training_domain", se: str = "sample",
                alpha: float = ALPHA) -> Study:
    """The study of these runs under one model-selection method (see the module docstring)."""
    if selection not in METHODS:
        raise ConfigError(f"--selection: {selection!r} is unknown; choose from: {', '.join(METHODS)}")
    if se not in SE_DDOF:
        raise ConfigError(f"--se: {se!r} is unknown; choose from: {', '.join(SE_DDOF)}")
    if not 0 < alpha < 1:
        raise ConfigError(f"--alpha: the test level must lie strictly between 0 and 1, got {alpha}")
    ddof, expected = SE_DDOF[se], expected_envs(runs)
    selected = with_run_facts(select(runs, selection), runs)
    if not len(selected):
        raise DataError(f"no finished single-test-environment runs to study with {selection} selection")
    summary, trials = summarize(selected, ddof, expected), per_trial(selected, expected)
    gradsamp = {configuration_key(r.resolved): gradsamp_settings(r.resolved) for r in runs}
    cells = summary[~summary.sampler.isin(["none", "skip"])]
    if not len(cells):
        raise DataError("no GradSamp runs to study: the study compares GradSamp settings (samplers other than "
                        "none and skip) with their skip controls")
    varying = _varying_gradsamp_keys([gradsamp[k] for k in cells.config_key])
    rows = []
    for d in cells.to_dict("records"):
        gs, t = gradsamp[d["config_key"]], trials[trials.dataset == d["dataset"]]
        for key in ("control_key", "full_key"):  # None where the summary found no such run (pandas gives nan)
            d[key] = d[key] if isinstance(d[key], str) else None
        extra = "".join(f", {k}={value_text(gs.get(k))}" for k in varying)
        row = {"dataset": d["dataset"], "algorithm": d["algorithm"], "reading": reading_label(gs),
               "schedule": schedule_label(gs) + extra, "sampler": d["sampler"], "config_key": d["config_key"],
               "control_key": d["control_key"], "full_key": d["full_key"], "acc": d["acc:Avg"], "acc_se": d["se:Avg"],
               "_order": (_reading_order(gs), _schedule_order(gs))}
        diffs = _differences(t, d["config_key"], d["control_key"]) if d["control_key"] else pd.Series(dtype=float)
        row["control_diffs"] = [float(v) for v in diffs]
        row["delta_control"], row["delta_control_se"], row["n"] = mean_se(diffs, ddof)
        row["t"], row["p"] = paired_test(row["control_diffs"]) if d["control_key"] else (math.nan, math.nan)
        full = _differences(t, d["config_key"], d["full_key"]) if d["full_key"] else pd.Series(dtype=float)
        row["delta_full"], row["delta_full_se"], row["n_full"] = mean_se(full, ddof)
        for key in ("saving_train_pct", "saving_train_eval_pct", "saving_updates_pct"):
            row[key] = d.get(key, math.nan)
        row["energy_flag"] = bool(d.get("saving_flag")) if isinstance(d.get("saving_flag"), (bool, np.bool_)) else False
        rows.append(row)
    rows.sort(key=lambda r: (r["dataset"], r["algorithm"], r["_order"]))
    for i, kind in enumerate(("reading", "schedule")):  # one order of readings and of schedules for every table
        labels = list(dict.fromkeys(r[kind] for r in sorted(rows, key=lambda r: (r["_order"][i], r[kind]))))
        for r in rows:
            r[f"{kind}_rank"] = labels.index(r[kind])
    out = pd.DataFrame(rows).drop(columns="_order")
    out["p_holm"] = holm(list(out["p"]))
    out["verdict"] = [holm_verdict(m, p, alpha) if isinstance(k, str) else NO_CONTROL
                      for m, p, k in zip(out["delta_control"], out["p_holm"], out["control_key"])]
    refs = summary[summary.sampler.isin(["none", "skip"])].copy()
    refs["schedule"] = [schedule_label(gradsamp[k]) + "".join(f", {v}={value_text(gradsamp[k].get(v))}"
                                                              for v in varying)
                        if s == "skip" else "" for k, s in zip(refs.config_key, refs.sampler)]
    sources = ", ".join(sorted({s.strip() for text in summary["sources"] for s in str(text).split(",") if s.strip()}))
    return Study(out.reset_index(drop=True), refs.reset_index(drop=True), selection, ddof, alpha,
                 int(np.isfinite(out["p"]).sum()), sources)


def gradsamp_settings(config: dict) -> dict:
    """A run's GradSamp settings, with the side that draws in a federated run (`side`: client or server)."""
    gs = dict(config.get("gradsamp", {}))
    if config.get("federated") and gs.get("sampler", "none") != "none":
        gs["side"] = config["federated"].get("gradsamp_side", "client")
    return gs


def _varying_gradsamp_keys(settings: list[dict]) -> list[str]:
    """GradSamp settings besides the reading and the schedule that differ between the study's cells."""
    keys = sorted({k for gs in settings for k in gs} - set(_LABELLED))
    return [k for k in keys if len({repr(gs.get(k)) for gs in settings}) > 1]
