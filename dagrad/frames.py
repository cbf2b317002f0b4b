"""Records -> runs and pandas frames: the one place that reads record files for tables and plots.

A *configuration* is everything in a run's config except what DomainBed varies inside one table cell
(trial seed, hparams seed, test environments) and what only says where/how it ran (name, seed, device,
data root, workers). GradSamp keys are dropped when the sampler is `none`, averaging keys when there is
no averaging, so equal experiments get equal configuration keys however their YAML was written."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

import pandas as pd

from dagrad.records import find_runs, read_records, split_run
from dagrad.summary import energy_joules

RUN_KEYS = {"name", "seed", "trial_seed", "algorithm.hparams_seed", "data.test_envs", "data.root",
            "data.num_workers", "data.eval_batch_size", "device", "energy.nvml_poll_hz"}
UNREADABLE = "unreadable"  # a source label added when some component of a reading had no joules


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
class Run:
    path: Path
    header: dict
    epochs: list[dict]
    summary: Optional[dict]

    @property
    def config(self) -> dict:
        return self.header.get("config", {})

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
            joules, src = _phase(record, "train")
            train, t_src = train + joules, t_src | src
            joules, src = _phase(record, "eval")
            evals, e_src = evals + joules, e_src | src
            points.append(Point(record["step"], record["epoch"], record["metrics"], train, evals,
                                frozenset(t_src), frozenset(e_src)))
        if self.averaged:
            joules, src = _reading(self.summary.get("final_eval_energy"))
            step = self.epochs[-1]["step"] if self.epochs else 0
            return [Point(step, None, self.summary["metrics"], train, evals + joules, frozenset(t_src),
                          frozenset(e_src | src))]
        return points


def _reading(reading: Optional[dict]) -> tuple[float, set]:
    joules, sources = energy_joules(reading)
    sources = set(sources)
    if reading and any(c.get("joules") is None for c in reading.get("components", {}).values()):
        sources.add(UNREADABLE)
    return joules or 0.0, sources


def _phase(record: dict, phase: str) -> tuple[float, set]:
    return _reading((record.get("energy") or {}).get(phase))


def load_runs(root: str | Path | Iterable[str | Path]) -> list[Run]:
    """Every run below a folder (or the given record files), in path order."""
    paths = find_runs(root) if isinstance(root, (str, Path)) else [Path(p) for p in root]
    runs = []
    for path in paths:
        header, epochs, summary = split_run(read_records(path))
        if header:
            runs.append(Run(Path(path), header, epochs, summary))
    return runs


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value and not key.endswith("hparams") and key != "options":
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
    return out


def configuration(config: dict) -> dict[str, Any]:
    """The flat, normalised settings that define a configuration (see the module docstring)."""
    flat = {k: v for k, v in flatten(config).items() if k not in RUN_KEYS}
    if flat.get("gradsamp.sampler", "none") == "none":
        flat = {k: v for k, v in flat.items() if not k.startswith("gradsamp.") or k == "gradsamp.sampler"}
    if flat.get("averaging.name", "none") == "none":
        flat = {k: v for k, v in flat.items() if not k.startswith("averaging.") or k == "averaging.name"}
    return flat


def configuration_key(config: dict) -> str:
    return hashlib.sha256(json.dumps(configuration(config), sort_keys=True).encode()).hexdigest()[:10]


SCHEDULE_KEYS = ("schedule", "every", "start", "probability", "epochs", "max_consecutive")


def family_key(config: dict) -> str:
    """The configuration without its GradSamp part: full training, GradSamp and the control share it."""
    conf = {k: v for k, v in configuration(config).items() if not k.startswith("gradsamp.")}
    return hashlib.sha256(json.dumps(conf, sort_keys=True).encode()).hexdigest()[:10]


def schedule_key(config: dict) -> str:
    """Which epochs are sampled/skipped: equal for a GradSamp setting and its equal-energy control."""
    gs = config.get("gradsamp", {})
    if gs.get("sampler", "none") == "none":
        return "none"
    return json.dumps({k: gs.get(k) for k in SCHEDULE_KEYS}, sort_keys=True)


def labels(runs: list[Run]) -> dict[str, tuple[str, str]]:
    """configuration key -> (algorithm label, setting label), naming only what varies per dataset."""
    by_key = {configuration_key(r.config): r for r in runs}
    out = {}
    for dataset in sorted({r.dataset for r in by_key.values()}):
        confs = {k: configuration(r.config) for k, r in by_key.items() if r.dataset == dataset}
        keys = sorted({name for c in confs.values() for name in c})
        varying = [name for name in keys  # differing among the configurations that have the key at all
                   if len({json.dumps(c[name], sort_keys=True) for c in confs.values() if name in c}) > 1]
        for key, conf in confs.items():
            algo = conf["algorithm.name"].upper() if len(conf["algorithm.name"]) <= 5 else conf["algorithm.name"]
            if conf.get("averaging.name", "none") != "none":
                algo += " + " + conf["averaging.name"].upper()
            sampler = conf.get("gradsamp.sampler", "none")
            setting = "full" if sampler == "none" else sampler
            extra_algo = [f"{n}={conf.get(n)}" for n in varying if n not in ("algorithm.name", "averaging.name",
                          "gradsamp.sampler") and not n.startswith("gradsamp.") and n in conf]
            extra_gs = [f"{n.split('.', 1)[1]}={conf.get(n)}" for n in varying
                        if n.startswith("gradsamp.") and n != "gradsamp.sampler" and n in conf]
            out[key] = (algo + (f" ({', '.join(extra_algo)})" if extra_algo else ""),
                        setting + (f" ({', '.join(extra_gs)})" if extra_gs else ""))
    return out


def runs_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per run: identity, protocol coordinates, labels, whole-run energy by phase with sources."""
    names = labels(runs)
    rows = []
    for run in runs:
        key = configuration_key(run.config)
        last = run.points()[-1] if run.points() else None
        rows.append({
            "run_id": run.run_id, "path": str(run.path), "dataset": run.dataset, "config_key": key,
            "algorithm": names[key][0], "setting": names[key][1],
            "sampler": run.config.get("gradsamp", {}).get("sampler", "none"),
            "test_envs": run.test_envs, "trial_seed": run.trial_seed, "hparams_seed": run.hparams_seed,
            "complete": run.complete, "reported": (run.summary or {}).get("reported", "online"),
            "epochs": len(run.epochs), "sampled_epochs": sum(r.get("kind") == "sampled" for r in run.epochs),
            "train_J": last.cum_train_J if last else 0.0, "eval_J": last.cum_eval_J if last else 0.0,
            "train_sources": ", ".join(sorted(last.train_sources)) if last else "",
            "eval_sources": ", ".join(sorted(last.eval_sources)) if last else "",
            "seconds": sum(r.get("seconds", 0.0) for r in run.epochs),
        })
    return pd.DataFrame(rows)


def epochs_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per epoch record: kind, every metric, cumulative energy by phase."""
    rows = []
    for run in runs:
        train = evals = 0.0
        for record in run.epochs:
            t, _ = _phase(record, "train")
            e, _ = _phase(record, "eval")
            train, evals = train + t, evals + e
            tests = [record["metrics"].get(f"env{i}_in_acc") for i in run.test_envs]
            tests = [v for v in tests if v is not None]
            rows.append({"run_id": run.run_id, "config_key": configuration_key(run.config), "epoch": record["epoch"],
                         "step": record["step"], "kind": record.get("kind"), "train_J": t, "eval_J": e,
                         "cum_train_J": train, "cum_eval_J": evals, "cum_J": train + evals,
                         "test_acc": sum(tests) / len(tests) if tests else float("nan"), **record["metrics"]})
    return pd.DataFrame(rows)
