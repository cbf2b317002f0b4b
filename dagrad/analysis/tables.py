"""Tables from records: per dataset, rows = algorithm x GradSamp setting, columns = each test
environment and their average, cells = accuracy mean ± SE over trial seeds; the average is taken per trial
seed over the test environments, then mean ± SE. SE = std / sqrt(n) with the sample standard deviation
(ddof 1) by default; DomainBed's collect_results uses np.std (ddof 0), which `ddof=0` (`dagrad report --se
domainbed`) reproduces so a table compares with published ones (ddof 1 is sqrt(n / (n - 1)) times larger:
1.22x at 3 seeds). `dagrad.analysis.report` puts the tables of every selection method into one report.

Beside them: the chosen runs' energy by phase with its source labels, the saving against the same
algorithm's full training, the accuracy change against full training (paired by trial seed), and for
every GradSamp setting the comparison with its equal-energy control: the `skip` run whose GradSamp settings
are the same in everything but the sampler (same schedule, history, buffers, optimizer state and guard).
Figures that mix measured and estimated energy, or have unreadable components, are flagged (‡).
Runs that measured an idle-power baseline (energy.idle_baseline_s) also show their dynamic energy
(gross - idle power x seconds) beside the gross figure. The footer states the precision and cuDNN
determinism the runs used, from their record headers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from dagrad.analysis import contention
from dagrad.analysis.runs import UNREADABLE, RecordedRun, read_runs
from dagrad.analysis.runs import mean_se
from dagrad.analysis.selection import DESCRIPTIONS, TIE_RULE, select

BEATS_SE = 2.0  # "beats" only when the paired difference exceeds this many standard errors
MIXED = "‡"


#: `--se` conventions: the ddof of the standard deviation behind the standard error
SE_DDOF = {"sample": 1, "domainbed": 0}


def se_words(ddof: int) -> str:
    """How a table's SE was computed, in words (for its footer)."""
    if ddof == 0:
        return "SE = std(ddof=0)/√n, DomainBed's collect_results convention"
    return "SE = std(ddof=1)/√n, the sample standard deviation; DomainBed's collect_results uses ddof=0 (--se domainbed)"


def _sources(series: pd.Series) -> set[str]:
    return {s.strip() for text in series for s in str(text).split(",") if s.strip()}


def mixed(sources: set[str]) -> bool:
    """True when a figure would add measured joules to estimated or attributed ones, or misses a component."""
    kinds = {s.split(":", 1)[0] for s in sources}
    return UNREADABLE in sources or ("measured" in kinds and bool(kinds & {"estimated", "attributed"}))


def per_trial(selected: pd.DataFrame, expected: Optional[dict] = None) -> pd.DataFrame:
    """One row per (dataset, configuration, trial seed): mean over test envs of accuracy (only when every
    test env of the dataset is present: those in `expected` {dataset: {test env: name}} when given, as
    DomainBed leaves the average out when a cell is empty) and of the chosen runs' energy."""
    rows = []
    for dataset, ds in selected.groupby("dataset"):
        envs = set((expected or {}).get(dataset, {})) or set(ds["test_env"])
        for (key, trial), g in ds.groupby(["config_key", "trial_seed"]):
            rows.append({"dataset": dataset, "config_key": key, "trial_seed": trial,
                         "acc": 100 * g["test_acc"].mean() if set(g["test_env"]) == envs else float("nan"),
                         "train_J": g["run_train_J"].mean(), "eval_J": g["run_eval_J"].mean(),
                         "train_eval_J": (g["run_train_J"] + g["run_eval_J"]).mean(),
                         "updates": g["run_updates"].mean(),
                         "dynamic_J": (g["run_dyn_train_J"] + g["run_dyn_eval_J"]).mean(skipna=False)
                         if "run_dyn_train_J" in g else float("nan"),
                         "selected_J": (g["sel_train_J"] + g["sel_eval_J"]).mean(),
                         "other_cpu_pct": g["run_other_cpu_pct"].mean() if "run_other_cpu_pct" in g else np.nan})
    return pd.DataFrame(rows)


def _paired(trials: pd.DataFrame, a: str, b: str, ddof: int = 1) -> tuple[float, float, int]:
    """Mean ± SE over trial seeds of acc(a) - acc(b), paired by trial seed."""
    x = trials[trials.config_key == a].set_index("trial_seed")["acc"]
    y = trials[trials.config_key == b].set_index("trial_seed")["acc"]
    return mean_se((x - y).dropna(), ddof)


def paired_verdict(diff: float, se: float, n: int) -> str:
    if n < 2 or not np.isfinite(se):
        return "undecided (fewer than 2 paired trial seeds)"
    if diff > BEATS_SE * se:
        return "GradSamp beats the control"
    if diff < -BEATS_SE * se:
        return "the control beats GradSamp"
    return "no clear difference"


def summarize(selected: pd.DataFrame, ddof: int = 1, expected: Optional[dict] = None) -> pd.DataFrame:
    """One row per (dataset, configuration): accuracy per test env and average, energy, comparisons
    (SEs with the given ddof). `expected` ({dataset: {test env: name}}) names the test environments a
    table should have even where this selection found nothing (their cells and the Avg stay empty)."""
    trials = per_trial(selected, expected)
    rows = []
    for (dataset, key), g in selected.groupby(["dataset", "config_key"], sort=False):
        first = g.iloc[0]
        t = trials[(trials.dataset == dataset) & (trials.config_key == key)]
        row = {"dataset": dataset, "algorithm": first.algorithm, "setting": first.setting, "config_key": key,
               "family": first.family, "control": first.control, "sampler": first.sampler}
        for env, e in g.groupby("env_name", sort=False):
            row[f"acc:{env}"], row[f"se:{env}"], row[f"n:{env}"] = mean_se(100 * e["test_acc"], ddof)
        row["acc:Avg"], row["se:Avg"], row["n:Avg"] = mean_se(t["acc"], ddof)
        for phase in ("train", "eval", "train_eval", "selected"):
            row[f"{phase}_J"], row[f"{phase}_J_se"], _ = mean_se(t[f"{phase}_J"], ddof)
        dynamic = t["dynamic_J"] if "dynamic_J" in t else []
        row["dynamic_J"], row["dynamic_J_se"], _ = mean_se(dynamic, ddof) \
            if len(dynamic) and np.isfinite(dynamic).all() else (np.nan, np.nan, 0)
        row["updates"] = float(t["updates"].mean())
        row["contention_pct"] = float(t["other_cpu_pct"].mean()) if t["other_cpu_pct"].notna().any() else np.nan
        sources = _sources(g["train_sources"]) | _sources(g["eval_sources"])
        row["sources"], row["mixed"] = ", ".join(sorted(sources)), mixed(sources)
        row["selections"] = len(g)
        row["tie_decided"] = int((g["tied"] > 0).sum()) if "tied" in g else 0
        rows.append(row)
    out = pd.DataFrame(rows)
    for col in ("full_key", "control_key"):
        out[col] = None
    for i, row in out.iterrows():
        same = out[(out.dataset == row.dataset) & (out.family == row.family)]
        full = same[same.sampler == "none"]
        if len(full) and row.sampler != "none":
            base = full.iloc[0]
            out.loc[i, "full_key"] = base.config_key
            out.loc[i, "saving_train_pct"] = 100 * (1 - row.train_J / base.train_J) if base.train_J else np.nan
            out.loc[i, "saving_train_eval_pct"] = 100 * (1 - row.train_eval_J / base.train_eval_J) \
                if base.train_eval_J else np.nan
            out.loc[i, "saving_updates_pct"] = 100 * (1 - row.updates / base.updates) if base.updates else np.nan
            out.loc[i, "saving_flag"] = row.mixed or base.mixed or row.sources != base.sources
            d = _paired(trials[trials.dataset == row.dataset], row.config_key, base.config_key, ddof)
            out.loc[i, "delta_full"], out.loc[i, "delta_full_se"], out.loc[i, "delta_full_n"] = d
        control = same[(same.sampler == "skip") & (same.control == row.control)]
        if row.sampler not in ("none", "skip") and not len(control):
            out.loc[i, "verdict"] = "no exact control (no skip run with the same GradSamp settings)"
        if len(control) and row.sampler not in ("none", "skip"):
            ctrl = control.iloc[0]
            d = _paired(trials[trials.dataset == row.dataset], row.config_key, ctrl.config_key, ddof)
            out.loc[i, "control_key"] = ctrl.config_key
            out.loc[i, "delta_control"], out.loc[i, "delta_control_se"], out.loc[i, "delta_control_n"] = d
            out.loc[i, "verdict"] = paired_verdict(*d)
    contention.qualify(out, trials)
    order = {"none": 0, "skip": 2}
    out["_order"] = [(r.family, order.get(r.sampler, 1), r.setting) for r in out.itertuples()]
    out = out.sort_values(["dataset", "algorithm", "_order"]).drop(columns="_order").reset_index(drop=True)
    out.attrs["ddof"] = ddof
    out.attrs["envs"] = {d: [names[k] for k in sorted(names)] for d, names in (expected or {}).items()}
    return out


def tidy(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per table figure: dataset, algorithm, setting, quantity, column, mean, se, n, sources."""
    rows = []
    for d in summary.to_dict("records"):
        base = {k: d[k] for k in ("dataset", "algorithm", "setting", "sampler", "config_key")}
        for col in [c[4:] for c in summary.columns if c.startswith("acc:")]:
            if np.isfinite(d[f"acc:{col}"]):
                rows.append({**base, "quantity": "accuracy_pct", "column": col, "mean": d[f"acc:{col}"],
                             "se": d[f"se:{col}"], "n": d[f"n:{col}"], "sources": ""})
        for phase in ("train", "eval", "train_eval", "selected"):
            rows.append({**base, "quantity": f"{phase}_energy_J", "column": "", "mean": d[f"{phase}_J"],
                         "se": d[f"{phase}_J_se"], "n": d["n:Avg"], "sources": d["sources"],
                         "flag": MIXED if d["mixed"] else ""})
        if np.isfinite(d.get("dynamic_J", np.nan)):
            rows.append({**base, "quantity": "train_eval_dynamic_energy_J", "column": "", "mean": d["dynamic_J"],
                         "se": d["dynamic_J_se"], "n": d["n:Avg"], "sources": d["sources"],
                         "flag": MIXED if d["mixed"] else ""})
        for name, se, n in (("delta_full", "delta_full_se", "delta_full_n"),
                            ("delta_control", "delta_control_se", "delta_control_n")):
            if np.isfinite(d.get(name, np.nan)):
                rows.append({**base, "quantity": f"{name}_pp", "column": "Avg", "mean": d[name], "se": d[se],
                             "n": d[n], "sources": "", "flag": d.get("verdict", "") if "control" in name else ""})
        if np.isfinite(d.get("contention_pct", np.nan)):
            rows.append({**base, "quantity": "other_cpu_share_pct", "column": "", "mean": d["contention_pct"],
                         "se": np.nan, "n": d["n:Avg"], "sources": "",
                         "flag": contention.UNEQUAL if d.get("contention_flag") else ""})
        for name in ("saving_train_pct", "saving_train_eval_pct", "saving_updates_pct"):
            if np.isfinite(d.get(name, np.nan)):
                rows.append({**base, "quantity": name, "column": "", "mean": d[name], "se": np.nan, "n": d["n:Avg"],
                             "sources": d["sources"], "flag": MIXED if d.get("saving_flag") else ""})
    return pd.DataFrame(rows)


def energy_unit(values) -> tuple[str, float]:
    top = max([abs(v) for v in values if v is not None and np.isfinite(v)] or [0.0])
    return ("MJ", 1e6) if top >= 1e6 else ("kJ", 1e3) if top >= 1e4 else ("J", 1.0)


def pm(mean: float, se: float, digits: int = 1) -> str:
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.{digits}f} ± {se:.{digits}f}" if np.isfinite(se) else f"{mean:.{digits}f}"


def table_cells(summary: pd.DataFrame, dataset: str) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, rows of cell strings, notes) of one dataset's table; shared by markdown and LaTeX."""
    s = summary[summary.dataset == dataset]
    envs = [c[4:] for c in s.columns if c.startswith("acc:") and c != "acc:Avg" and s[c].notna().any()]
    named = summary.attrs.get("envs", {}).get(dataset)
    if named:  # every test environment the sweep has, in order, empty where this selection found nothing
        envs = named + [e for e in envs if e not in named]
    unit, scale = energy_unit(s["train_eval_J"])
    dynamic = "dynamic_J" in s and bool(np.isfinite(s["dynamic_J"]).any())
    header = ["algorithm", "setting", *envs, "Avg", "Δ vs full", "updates (saved)", f"train ({unit})",
              f"eval ({unit})", f"train + eval{' gross' if dynamic else ''} ({unit})",
              *([f"train + eval dynamic ({unit})"] if dynamic else []), f"to selected ({unit})",
              "saving (train / train + eval)",
              "energy source", "contention"]
    rows = []
    for d in s.to_dict("records"):
        flag = f" {MIXED}" if d["mixed"] else ""
        saving = "–"
        if np.isfinite(d.get("saving_train_eval_pct", np.nan)):
            saving = f"{d['saving_train_pct']:.0f} % / {d['saving_train_eval_pct']:.0f} %" + \
                (f" {MIXED}" if d.get("saving_flag") else "")
        delta = pm(d.get("delta_full", np.nan), d.get("delta_full_se", np.nan))
        saved = d.get("saving_updates_pct", np.nan)
        updates = f"{d['updates']:.0f}" + (f" ({saved:.0f} %)" if np.isfinite(saved) else "")
        phases = ("train", "eval", "train_eval", *(["dynamic"] if dynamic else []), "selected")
        rows.append([d["algorithm"], d["setting"], *[pm(d.get(f"acc:{e}", np.nan), d.get(f"se:{e}", np.nan))
                                               for e in envs],
                     pm(d["acc:Avg"], d["se:Avg"]), delta if delta == "–" else f"{delta} pp", updates,
                     *[pm(d[f"{p}_J"] / scale, d[f"{p}_J_se"] / scale, 1 if scale > 1 else 2) +
                       (flag if np.isfinite(d[f"{p}_J"]) else "") for p in phases], saving, d["sources"],
                     contention.cell(d)])
    notes = []
    for d in s[s["control_key"].isna() & ~s["sampler"].isin(["none", "skip"])].to_dict("records"):
        notes.append(f"{d['algorithm']}, {d['setting']}: {d['verdict']}.")
    for d in s[s.get("tie_decided", pd.Series(0, index=s.index)) > 0].to_dict("records"):
        notes.append(f"{d['algorithm']}, {d['setting']}: a tie in validation accuracy decided {d['tie_decided']} of "
                     f"{d['selections']} selection(s) ({TIE_RULE}).")
    for d in s[s["control_key"].notna()].to_dict("records"):
        notes.append(f"{d['algorithm']}, {d['setting']} vs its equal-energy control (skip, same epochs): "
                     f"{pm(d['delta_control'], d['delta_control_se'])} pp over {int(d['delta_control_n'])} "
                     f"trial seed(s): {d['verdict']}.")
    notes += [contention.note(d) for d in s[s["contention_flag"]].to_dict("records")]
    return header, rows, notes


def numerics_line(selected: pd.DataFrame) -> str:
    """How the runs computed, from their record headers: precision and cuDNN determinism, with counts."""
    from dagrad.run.numerics import PRECISIONS

    if "precision" not in selected:
        return ""
    counts = selected.groupby(["precision", "deterministic"])["run_id"].nunique()
    parts = [f"{precision} ({PRECISIONS.get(precision, 'unknown precision')}), "
             f"{'deterministic' if deterministic else 'non-deterministic (cudnn.benchmark)'} cuDNN: {n} run(s)"
             for (precision, deterministic), n in counts.items()]
    return "Numerics (from the record headers): " + "; ".join(parts) + "."


def _footer(summary: pd.DataFrame, selection: str, numerics: str = "") -> list[str]:
    n = sorted({int(v) for c in summary.columns if c.startswith("n:") for v in summary[c] if np.isfinite(v) and v})
    lines = [f"Selection: {DESCRIPTIONS[selection]}. Accuracy (%) on the test environment's `in` split; "
             f"mean ± SE over {'/'.join(map(str, n)) or 0} trial seeds ({se_words(summary.attrs.get('ddof', 1))}); "
             "Avg = mean over test "
             "environments per trial seed, then mean ± SE. Δ vs full: paired by trial seed against the same "
             "algorithm's full training.",
             "Energy: the chosen runs' whole training (train phase incl. sampled epochs, eval phase = every "
             "split evaluated each epoch), mean over test environments per trial seed, then mean ± SE; picking an "
             "earlier epoch refunds nothing. To selected: train + eval energy spent up to and including the "
             "selected epoch (what stopping there would have cost). Saving = 1 − energy / full training's energy. "
             "Train + eval is the sum of those two phases; a run's whole energy (`run` in its records, `dagrad "
             "status`) also counts start-up, checkpoints and the gaps between windows.",
             f"GradSamp 'beats' its control only when the paired difference exceeds {BEATS_SE:g} SE "
             "(not a formal test with few seeds)."]
    if "dynamic_J" in summary and np.isfinite(summary["dynamic_J"]).any():
        lines.append("Gross energy is what the meters read. Dynamic energy = gross − idle power × seconds, window "
                     "by window, with idle power measured once per job (energy.idle_baseline_s); shown only for "
                     "rows whose every run measured a baseline.")
    if numerics:
        lines.append(numerics)
    if "contention_pct" in summary and np.isfinite(summary["contention_pct"]).any():
        lines.append(contention.RULE)
    sources = _sources(summary["sources"])
    if any(s.startswith("attributed") for s in sources):
        lines.append("Attributed energy (attributed:*) is a measured node total times the job's share of CPU time "
                     "(jobs shared the node), not a measurement of the job alone.")
    if any(s.startswith("estimated") for s in sources):
        lines.append("Estimated energy (estimated:*) is CPU-seconds × watts per thread or a similar model, "
                     "not a measurement.")
    if summary["mixed"].any() or summary.get("saving_flag", pd.Series(dtype=bool)).fillna(False).any():
        lines.append(f"{MIXED} mixes measured and estimated (or attributed) figures, has unreadable components, or "
                     "compares rows with different sources: not a like-for-like number.")
    return lines


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def tables_markdown(summary: pd.DataFrame, selection: str, numerics: str = "", level: str = "###") -> str:
    out = []
    for dataset in summary["dataset"].unique():
        header, rows, notes = table_cells(summary, dataset)
        out += [f"{level} {dataset}", "", *markdown_table(header, rows), ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(out + [f"_{line}_" for line in _footer(summary, selection, numerics)]) + "\n"


def tex(text: str) -> str:
    """Text escaped for LaTeX, with the report's symbols in math mode."""
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("±", r"$\pm$"), ("Δ", r"$\Delta$"), ("‡", r"$^\ddagger$"), ("√", r"$\sqrt{}$"), ("−", "-"),
                 ("×", r"$\times$"), ("–", "--"), ("α", r"$\alpha$"), ("≤", r"$\le$"), ("▲", r"$\uparrow$"),
                 ("▼", r"$\downarrow$")):
        text = text.replace(a, b)
    return text


def tables_latex(summary: pd.DataFrame, selection: str, numerics: str = "") -> str:
    """booktabs tables (one per dataset); needs \\usepackage{booktabs}."""
    out = []
    for dataset in summary["dataset"].unique():
        header, rows, notes = table_cells(summary, dataset)
        out += [r"\begin{table}[t]", r"\centering\small", rf"\caption{{{tex(dataset)}}}",
                r"\begin{tabular}{ll" + "c" * (len(header) - 2) + "}", r"\toprule",
                " & ".join(tex(h) for h in header) + r" \\", r"\midrule"]
        out += [" & ".join(tex(c) for c in r) + r" \\" for r in rows]
        out += [r"\bottomrule", r"\end{tabular}"]
        out += [r"\par\footnotesize " + tex(n) for n in notes + _footer(summary, selection, numerics)]
        out += [r"\end{table}", ""]
    return "\n".join(out)


def build(runs: str | Path | list[RecordedRun], selection: str = "training_domain",
          ddof: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(selected models, per-configuration summary) for the given runs, or every run below a folder."""
    runs = read_runs(runs) if isinstance(runs, (str, Path)) else runs
    selected = with_run_facts(select(runs, selection), runs)
    return selected, summarize(selected, ddof) if len(selected) else pd.DataFrame()


def with_run_facts(selected: pd.DataFrame, runs: list[RecordedRun]) -> pd.DataFrame:
    """The selected rows with each run's dynamic energy and numerics (from its records)."""
    by_path = {str(r.path): r for r in runs}
    out = selected.copy()
    facts = [by_path[p] for p in out["path"]] if len(out) else []
    dynamic = [r.dynamic_energy() for r in facts]
    out["run_dyn_train_J"] = [d[0] for d in dynamic]
    out["run_dyn_eval_J"] = [d[1] for d in dynamic]
    out["precision"] = [r.numerics["precision"] for r in facts]
    out["deterministic"] = [bool(r.numerics["deterministic"]) for r in facts]
    out["channels_last"] = [r.numerics["channels_last"] for r in facts]
    out["run_other_cpu_pct"] = [contention.other_cpu_pct(r.epochs) for r in facts]
    out["model"] = [kept_model(r, e) for r, e in zip(facts, out["epoch"])]
    return out


def kept_model(run: RecordedRun, epoch) -> str:
    """The kept model file selection chose in `run` (its summary line names the kept models), or why none."""
    kept = (run.summary or {}).get("kept")
    if kept is None:
        return "not kept (run predates kept models)"
    rel = kept.get("swad") if epoch == "averaged" else f"models/epoch-{epoch}.pt"
    if rel is None or rel not in kept.values():
        return f"not kept (checkpoints.keep: epoch {epoch} is neither last nor best)"
    return str(run.path.parent / rel)


def models_table(selected: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Which kept model each selected run names: one row per report cell."""
    header = ["dataset", "algorithm", "setting", "test env", "trial", "hparams", "epoch", "model"]
    rows = [[str(r["dataset"]), str(r["algorithm"]), str(r["setting"]), str(r["env_name"]), str(r["trial_seed"]),
             str(r["hparams_seed"]), str(r["epoch"]), str(r.get("model", ""))]
            for r in selected.to_dict("records")]
    return header, rows

