"""The GradSamp study as text and files: `dagrad report RUNS --study` (and `dagrad.study`).

Per dataset: the matrix (rows algorithm x reading, columns schedules, cells the paired difference against
the skip control with the verdict marked), every cell in full (the test, the difference against full
training, the energy and update savings), the full-training and skip-control rows the cells are compared
with, and the rule. Markdown (study.md), LaTeX (study.tex) or CSV (study.csv, one row per cell with the
per-seed differences), beside the heatmaps (`<dataset>-study.png` / `.svg`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from scipy import stats

from dagrad.analysis.tables import energy_unit, markdown_table, pm, se_words, tex
from dagrad.analysis.runs import read_runs
from dagrad.analysis.selection import DESCRIPTIONS
from dagrad.analysis.study import ALPHA, BEATS, LOSES, NO_CONTROL, UNCLEAR, Study, build_study, ordered
from dagrad.utils.atomic import make_folders, remove_empty_folders, storage_error, write_text_atomic
from dagrad.utils.errors import DataError, StorageError

MARKS = {BEATS: " ▲", LOSES: " ▼"}
FORMATS = {"md": "study.md", "latex": "study.tex", "csv": "study.csv"}


def _p(value: float) -> str:
    if not np.isfinite(value):
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _pm(mean: float, se: float) -> str:
    """mean ± SE to 0.1, without a "-0.0"."""
    return pm(0.0 if np.isfinite(mean) and round(mean, 1) == 0 else mean, se)


def _pct(value: float) -> str:
    return f"{value:.0f} %" if np.isfinite(value) else "–"


def matrix_cells(study: Study, dataset: str) -> tuple[list[str], list[list[str]]]:
    """Rows algorithm x reading, columns schedules: "Δ ± SE" against the control, ▲/▼ where the test decides."""
    c = study.cells[study.cells.dataset == dataset]
    schedules = ordered(c, "schedule")
    rows = []
    for (algorithm, reading), g in c.groupby(["algorithm", "reading"], sort=False):
        by = {d["schedule"]: d for d in g.to_dict("records")}
        row = [algorithm, reading]
        for schedule in schedules:
            d = by.get(schedule)
            if d is None:
                row.append("")
            elif d["verdict"] == NO_CONTROL:
                row.append("no control")
            else:
                row.append(_pm(d["delta_control"], d["delta_control_se"]) + MARKS.get(d["verdict"], ""))
        rows.append(row)
    return ["algorithm", "reading", *schedules], rows


def detail_cells(study: Study, dataset: str) -> tuple[list[str], list[list[str]]]:
    """Every cell: accuracy, the test against the control, the difference against full training, savings."""
    header = ["algorithm", "reading", "schedule", "n", "OOD acc (%)", "Δ vs skip (pp)", "t", "p", "p (Holm)",
              "verdict", "Δ vs full (pp)", "train energy saved", "updates saved"]
    rows = []
    for d in study.cells[study.cells.dataset == dataset].to_dict("records"):
        flag = " ‡" if d["energy_flag"] else ""
        rows.append([d["algorithm"], d["reading"], d["schedule"], str(int(d["n"])), pm(d["acc"], d["acc_se"]),
                     _pm(d["delta_control"], d["delta_control_se"]), f"{d['t']:.2f}" if np.isfinite(d["t"]) else "–",
                     _p(d["p"]), _p(d["p_holm"]), d["verdict"], _pm(d["delta_full"], d["delta_full_se"]),
                     _pct(d["saving_train_pct"]) + flag, _pct(d["saving_updates_pct"])])
    return header, rows


def reference_cells(study: Study, dataset: str) -> tuple[list[str], list[list[str]]]:
    """The rows the cells are compared with: each algorithm's full training and its skip controls."""
    r = study.references[study.references.dataset == dataset]
    unit, scale = energy_unit(r["train_J"])
    header = ["algorithm", "run", "n", "OOD acc (%)", f"train energy ({unit})", "updates"]
    rows = [[d["algorithm"], "full training" if d["sampler"] == "none" else f"skip, {d['schedule']}",
             str(int(d["n:Avg"])), pm(d["acc:Avg"], d["se:Avg"]),
             pm(d["train_J"] / scale, d["train_J_se"] / scale, 1 if scale > 1 else 2), f"{d['updates']:.0f}"]
            for d in r.to_dict("records")]
    return header, rows


def rule_lines(study: Study) -> list[str]:
    counts = study.cells["verdict"].value_counts()
    lines = [
        f"Selection: {DESCRIPTIONS[study.selection]}. OOD accuracy (%): the test environments' `in` accuracy, "
        "averaged over the test environments per trial seed. Δ: mean ± SE over trial seeds of the differences "
        f"paired by trial seed ({se_words(study.ddof)}).",
        f"Verdict: a two-sided paired t-test on the per-trial-seed differences cell − skip control (t distribution "
        f"with n − 1 degrees of freedom, sample standard deviation) at α = {study.alpha:g}, with the "
        f"Holm–Bonferroni correction over all {study.tests} tested cells of this study (every dataset, algorithm, "
        f"reading and schedule with a control and at least 2 paired trial seeds). ▲ {BEATS} (adjusted p < α, "
        f"mean > 0), ▼ {LOSES} (adjusted p < α, mean < 0); otherwise {UNCLEAR}. Of the {study.tests} tests: "
        f"{BEATS}: {counts.get(BEATS, 0)}; {LOSES}: {counts.get(LOSES, 0)}; {UNCLEAR}: {counts.get(UNCLEAR, 0)}.",
        "Control: the `skip` run with the same GradSamp settings but the sampler (same schedule: the same epochs "
        "skipped, the same training energy). Δ vs full: against the same algorithm's full training. Saved: "
        "1 − train energy / full training's, 1 − optimizer updates / full training's (means over trial seeds).",
        f"Energy sources: {study.sources or 'none'}."]
    tested = study.cells[np.isfinite(study.cells["p"])]
    if len(tested):  # the cells a follow-up on other data re-tests (configs/sweeps/study_digits_stroke.yaml)
        ends = [tested.loc[tested["delta_control"].idxmax()], tested.loc[tested["delta_control"].idxmin()]]
        lines.append("; ".join(f"{which} cell against its control: {d['dataset']}, {d['algorithm']}, {d['reading']}, "
                               f"{d['schedule']} ({_pm(d['delta_control'], d['delta_control_se'])} pp, {d['verdict']})"
                               for which, d in zip(("Best", "worst"), ends)) + ".")
    if len(tested):  # what the correction can detect at all: the first Holm step compares p with α / m
        n = int(tested["n"].median())
        bar = stats.t.isf(study.alpha / (2 * study.tests), n - 1)
        lines.insert(2, f"Power: with n = {n} trial seeds and m = {study.tests} tests, the most significant cell is "
                        f"called only when |t| ≥ {bar:.1f}, i.e. its mean difference is at least {bar:.1f} SE "
                        f"(t distribution, {n - 1} degrees of freedom, two-sided α / m); more seeds lower the bar.")
    if "estimated" in study.sources:
        lines.append("Estimated energy (estimated:*) is CPU-seconds × watts per thread or a similar model, not a "
                     "measurement.")
    if study.cells["energy_flag"].any():
        lines.append("‡ compares energy figures of different or mixed sources: not a like-for-like saving.")
    return lines


def study_markdown(study: Study, heatmaps: bool = True) -> str:
    out = []
    for dataset in dict.fromkeys(study.cells.dataset):
        out += [f"## GradSamp study: {dataset}", "", "### Against the equal-energy control (pp, GradSamp − skip)", "",
                *markdown_table(*matrix_cells(study, dataset)), "", "### Every cell", "",
                *markdown_table(*detail_cells(study, dataset)), "", "### Full training and the skip controls", "",
                *markdown_table(*reference_cells(study, dataset)), ""]
        out += [f"![{dataset}: GradSamp − skip control]({dataset}-study.png)", ""] if heatmaps else []
    return "\n".join(out + [f"_{line}_\n" for line in rule_lines(study)]).rstrip() + "\n"


def _latex_table(caption: str, header: list[str], rows: list[list[str]], left: int) -> list[str]:
    return [r"\begin{table}[t]", r"\centering\scriptsize", rf"\caption{{{tex(caption)}}}",
            r"\begin{tabular}{" + "l" * left + "c" * (len(header) - left) + "}", r"\toprule",
            " & ".join(tex(h) for h in header) + r" \\", r"\midrule",
            *[" & ".join(tex(c) for c in r) + r" \\" for r in rows], r"\bottomrule", r"\end{tabular}",
            r"\end{table}", ""]


def study_latex(study: Study) -> str:
    """booktabs tables per dataset (needs \\usepackage{booktabs}), the rule as a closing paragraph."""
    out = []
    for dataset in dict.fromkeys(study.cells.dataset):
        out += [rf"\subsection{{GradSamp study: {tex(dataset)}}}"]
        out += _latex_table(f"{dataset}: GradSamp − skip control (pp)", *matrix_cells(study, dataset), 2)
        out += _latex_table(f"{dataset}: every cell", *detail_cells(study, dataset), 3)
        out += _latex_table(f"{dataset}: full training and the skip controls", *reference_cells(study, dataset), 2)
    return "\n".join(out + [tex(line) + "\n" for line in rule_lines(study)])


def study_csv(study: Study) -> str:
    """One row per cell, numbers unrounded, the per-seed differences as a ;-separated list."""
    frame = study.cells.assign(control_diffs=[";".join(f"{v:.10g}" for v in d) for d in study.cells.control_diffs],
                               selection=study.selection, alpha=study.alpha, tests=study.tests,
                               se_convention=se_words(study.ddof))
    return frame.to_csv(index=False)


def render_study(study: Study, fmt: str, heatmaps: bool = True) -> str:
    """The study in md, latex or csv; `heatmaps`: link the heatmap files from the markdown."""
    if fmt == "md":
        return study_markdown(study, heatmaps)
    return study_latex(study) if fmt == "latex" else study_csv(study)


def write_study(runs_dir: str | Path, fmt: str = "md", selection: Optional[str] = None,
                out: Optional[str | Path] = None, plots: bool = True, se: str = "sample",
                alpha: float = ALPHA) -> tuple[str, list[Path]]:
    """Write study.md / study.tex / study.csv and the heatmaps under `out` (default RUNS/report); returns
    (text, files). A failed write removes what it created and raises a StorageError naming the file."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise DataError(f"{runs_dir}: no such folder (give a sweep folder)")
    study = build_study(read_runs(runs_dir), selection or "training_domain", se, alpha)
    out = Path(out) if out is not None else runs_dir / "report"
    created = make_folders(out)
    before = set(out.iterdir())
    try:
        text = render_study(study, fmt, plots)
        files = [out / FORMATS[fmt]]
        write_text_atomic(files[0], text)
        if plots:
            from dagrad.analysis.heatmap import plot_heatmaps

            files += plot_heatmaps(study.cells, out, study.alpha, study.tests)
        return text, files
    except (OSError, StorageError) as exc:
        for path in set(out.iterdir()) - before:
            path.unlink(missing_ok=True)
        remove_empty_folders(created)
        raise exc if isinstance(exc, StorageError) else storage_error(exc.filename or out, exc) from None

