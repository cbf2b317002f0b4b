"""Hand-written record files with known answers, for selection and report tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from dagrad.config.schema import ExperimentConfig, to_dict
from dagrad.config.experiment import resolve
from dagrad.records.files import FORMAT


def reading(name: str, joules: float, source: str = "estimated:cpu-time", component: str = "cpu") -> dict:
    return {"name": name, "seconds": 1.0, "cpu_seconds": 1.0, "joules": joules, "co2_grams": None,
            "sources": [source], "components": {component: {"joules": joules, "source": source, "params": {}}}}


def write_run(folder: Path, *, test_envs: list[int], epochs: list[dict], n_envs: int = 3, trial_seed: int = 0,
              hparams_seed: int = 0, algorithm: str = "erm", sampler: str = "none",
              summary_metrics: Optional[dict] = None, final_eval_J: float = 0.0, run_id: Optional[str] = None,
              steps: int = 10, gradsamp: Optional[dict] = None, precision: Optional[str] = None,
              channels_last: bool = False) -> Path:
    """epochs: dicts with `metrics` (env{i}_{in,out}_acc), `train_J`, `eval_J`, optional `source`, `kind`;
    gradsamp: other GradSamp settings (e.g. {"buffers": "extrapolate", "guard": True}); precision (with
    channels_last): the run's numerics, also stated in the header as the engine states them."""
    cfg = ExperimentConfig()
    if precision is not None:
        cfg.precision, cfg.channels_last = precision, channels_last
    cfg.data.test_envs, cfg.trial_seed, cfg.algorithm.hparams_seed = test_envs, trial_seed, hparams_seed
    cfg.algorithm.name, cfg.gradsamp.sampler = algorithm, sampler
    if sampler != "none":
        cfg.gradsamp.schedule_options = {"start": 1, "every": 2}
    for key, value in (gradsamp or {}).items():
        setattr(cfg.gradsamp, key, value)
    header = {"type": "header", "format": FORMAT, "run_id": run_id or folder.name, "seed": 1, "config": to_dict(cfg),
              "resolved": resolve(cfg).canonical(),
              "data": {"environments": [f"e{i}" for i in range(n_envs)], "test_envs": test_envs,
                       "train_envs": [i for i in range(n_envs) if i not in test_envs]}}
    if precision is not None:
        header["numerics"] = {"precision": precision, "deterministic": True, "channels_last": channels_last}
    lines, updates = [header], 0
    for i, e in enumerate(epochs):
        updates += steps if e.get("kind", "train") == "train" else 0
        lines.append({"type": "epoch", "epoch": i, "step": (i + 1) * steps, "kind": e.get("kind", "train"),
                      "sampler": sampler, "updates": updates,
                      "metrics": e["metrics"], "seconds": 2.0,
                      "energy": {"train": reading("train", e["train_J"], e.get("source", "estimated:cpu-time")),
                                 "eval": reading("eval", e["eval_J"], e.get("eval_source", "estimated:cpu-time"))}})
        if "conditions" in e:  # the training window's conditions (dagrad.energy.conditions)
            lines[-1]["energy"]["train"]["conditions"] = e["conditions"]
    summary = {"type": "summary", "reported": "online", "metrics": None}
    if summary_metrics is not None:
        summary.update(reported="averaged", metrics=summary_metrics, final_eval_energy=reading("final_eval", final_eval_J))
    lines.append(summary)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "records.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder / "records.jsonl"


def metrics(n_envs: int = 3, **values: float) -> dict:
    """All env{i}_{in,out}_acc keys, 0.5 unless given (e.g. env0_in_acc=0.7)."""
    out = {f"env{i}_{s}_acc": 0.5 for i in range(n_envs) for s in ("in", "out")}
    out.update(values)
    return out
