"""`dagrad evaluate`: a run's kept model, or the model selection chose in each cell of a sweep's report,
scored on any dataset or folder tree; the results as JSONL in the records' style and as a table."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from dagrad.utils.atomic import write_text_atomic
from dagrad.utils.errors import RecordsError
from dagrad.models.loading import load_model
from dagrad.models.scoring import fmt, score_envs
from dagrad.models.sources import resolve_data
from dagrad.records.files import RECORDS_NAME

FORMAT = 1


def selected_models(folder: Path, method: str = "training_domain") -> list[tuple[dict, Path, Any]]:
    """(cell, run folder, which) for each cell of the sweep's report under `method`: the chosen run and
    the kept model selection chose there (the averaged model of a SWAD run, else the chosen epoch)."""
    from dagrad.analysis.runs import read_runs
    from dagrad.analysis.selection import select

    chosen = select(read_runs(folder), method)
    if chosen.empty:
        raise RecordsError(f"{folder}: no finished run fills a report cell (nothing to evaluate)")
    out = []
    for row in chosen.to_dict("records"):
        cell = {k: row[k] for k in ("dataset", "algorithm", "setting", "test_env", "trial_seed", "hparams_seed",
                                    "method")}
        which = "swad" if row["epoch"] == "averaged" else int(row["epoch"])
        out.append((cell, Path(row["path"]).parent, which))
    return out


def evaluate_models(target: str | Path, data: str, envs: Optional[Sequence[str]] = None,
                    which: Optional[str | int] = None, device: str = "cpu", out: Optional[str | Path] = None,
                    root: Optional[str] = None, selection: str = "training_domain",
                    plugins: Any = ()) -> tuple[list[dict], Path]:
    """Score a run's kept model `which` (default best) or, for a sweep folder, each report cell's selected
    model, on `data`; returns the result lines and the JSONL file written."""
    target = Path(target)
    if not target.exists():
        raise RecordsError(f"no run or sweep folder at {target}")
    if (target / RECORDS_NAME).is_file() or target.is_file():
        folder = target if target.is_dir() else target.parent
        jobs = [({}, folder, which if which is not None else "best")]
    else:
        folder = target
        jobs = selected_models(target, selection) if which in (None, "selected") else \
            [({}, Path(r), which) for r in sorted({p.parent for p in target.rglob(RECORDS_NAME)})]
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:  # the meter meters the one GPU the model runs on
        from dagrad.run.parts import resolve_device

        dev = resolve_device("cuda")
    label = str(which) if which is not None else ("best" if not jobs[0][0] else "selected")
    lines: list[dict] = [{"type": "header", "format": FORMAT, "target": str(target), "data": data,
                          "envs": list(envs or []), "which": label,
                          "selection": selection if which in (None, "selected") and jobs and jobs[0][0] else None,
                          "device": str(dev), "versions": {"torch": torch.__version__,
                                                           "python": platform.python_version()}}]
    for cell, run, pick in jobs:
        loaded = load_model(run, pick, device=dev, plugins=plugins)
        config = loaded.header.get("config") or {}
        from dagrad.config.schema import EnergyConfig, from_dict

        energy = from_dict(config.get("energy") or {}, EnergyConfig, "energy.")
        datasets = resolve_data(data, loaded.header, loaded.class_names, loaded.transform, envs, root)
        for row in score_envs(loaded, datasets, dev, energy):
            lines.append({"type": "evaluation", "run": str(run), "run_id": loaded.header.get("run_id"),
                          **({"cell": cell} if cell else {}), "model": loaded.which, "epoch": loaded.epoch,
                          "file": str(loaded.file), **row})
    path = Path(out) if out else folder / "evaluations" / f"{_label(data)}-{lines[0]['which']}.jsonl"
    write_text_atomic(path, "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines))
    return lines, path


def _label(data: str) -> str:
    name = Path(data).name or "data"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def table(lines: list[dict]) -> str:
    """The evaluation as a markdown table: one row per (model, environment)."""
    rows = [r for r in lines if r.get("type") == "evaluation"]
    header = ["run", "model", "env", "n", "acc %", "loss", "ECE", "energy J", "source"]
    body = []
    for r in rows:
        cell = r.get("cell")
        who = f"{cell['algorithm']} {cell['setting']} test {cell['test_env']} trial {cell['trial_seed']}" \
            if cell else Path(r["run"]).name
        energy = r.get("energy") or {}
        body.append([who, r["model"] + (f" (epoch {r['epoch']})" if r.get("epoch") is not None else ""), r["env"],
                     str(r["n"]), fmt(r["acc"], True), fmt(r["loss"]), fmt(r["ece"]), fmt(energy.get("joules")),
                     ", ".join(energy.get("sources") or []) or "-"])
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(out)
