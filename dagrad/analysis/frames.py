"""Runs -> pandas frames and the keys that group them.

A *configuration* is everything in a run's canonical config (options filled in; switched-off GradSamp
and averaging reduced to their name) except what DomainBed varies inside one table cell (`CELL_KEYS`:
trial seed, hparams seed, test environments, seed) and what only says where a run executed
(`dagrad.config.schema.RUN_ENVIRONMENT_KEYS`, the same list the job identity leaves out). So equal experiments
get equal configuration keys however their YAML was written.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dagrad.analysis.runs import RecordedRun, phase_energy
from dagrad.records.values import epoch_kind
from dagrad.config.schema import RUN_ENVIRONMENT_KEYS, stable_hash, without_keys

if TYPE_CHECKING:  # pandas costs half a second to import; only reports need it
    import pandas as pd

#: what DomainBed varies inside one table cell: runs differing only in these share a configuration
CELL_KEYS = ("seed", "trial_seed", "algorithm.hparams_seed", "data.test_envs")
#: GradSamp settings that say how the step is drawn: a sampler and its equal-energy control differ in them only
DRAW_KEYS = ("gradsamp.sampler", "gradsamp.sampler_options")
#: GradSamp settings kept in another section: which side of a federated run draws (a client its local
#: update, or the server a whole round). Part of GradSamp's configuration, not of the family that full
#: training shares, and meaningless without GradSamp
GRADSAMP_ELSEWHERE = ("federated.gradsamp_side",)


def is_gradsamp_key(name: str) -> bool:
    return name.startswith("gradsamp.") or name in GRADSAMP_ELSEWHERE


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value and not key.endswith("hparams") and key != "options":
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
    return out


def configuration(config: dict) -> dict[str, Any]:
    """The flat settings that define a configuration (see the module docstring)."""
    flat = flatten(without_keys(config, RUN_ENVIRONMENT_KEYS + CELL_KEYS))
    if flat.get("gradsamp.sampler", "none") == "none":  # records before format 2: drop the unused settings
        flat = {k: v for k, v in flat.items() if not is_gradsamp_key(k) or k == "gradsamp.sampler"}
    if flat.get("averaging.name", "none") == "none":
        flat = {k: v for k, v in flat.items() if not k.startswith("averaging.") or k == "averaging.name"}
    return flat


def configuration_key(config: dict) -> str:
    return stable_hash(configuration(config), 10)


def family_key(config: dict) -> str:
    """The configuration without its GradSamp part: full training, GradSamp and the control share it."""
    return stable_hash({k: v for k, v in configuration(config).items() if not is_gradsamp_key(k)}, 10)


def control_key(config: dict) -> str:
    """Every GradSamp setting but how the step is drawn: equal for a sampler and its exact `skip` control
    (same schedule, history, buffers, optimizer-state and guard settings), so they sample the same epochs."""
    gs = {k: v for k, v in configuration(config).items() if is_gradsamp_key(k)}
    if gs.get("gradsamp.sampler", "none") == "none":
        return "none"
    return stable_hash({k: v for k, v in gs.items() if not any(k.startswith(d) for d in DRAW_KEYS)}, 10)


def labels(runs: list[RecordedRun]) -> dict[str, tuple[str, str]]:
    """configuration key -> (algorithm label, setting label), naming only what varies per dataset."""
    by_key = {configuration_key(r.resolved): r for r in runs}
    out = {}
    for dataset in sorted({r.dataset for r in by_key.values()}):
        confs = {k: configuration(r.resolved) for k, r in by_key.items() if r.dataset == dataset}
        keys = sorted({name for c in confs.values() for name in c})
        varying = [name for name in keys  # differing among the configurations that have the key at all
                   if len({json.dumps(c[name], sort_keys=True) for c in confs.values() if name in c}) > 1]
        for key, conf in confs.items():
            algo = conf["algorithm.name"].upper() if len(conf["algorithm.name"]) <= 5 else conf["algorithm.name"]
            if conf.get("averaging.name", "none") != "none":
                algo += " + " + conf["averaging.name"].upper()
            sampler = conf.get("gradsamp.sampler", "none")
            setting = "full" if sampler == "none" else sampler
            extra_algo = [f"{_short(n)}={conf.get(n)}" for n in varying if n not in ("algorithm.name", "averaging.name",
                          "gradsamp.sampler") and not is_gradsamp_key(n) and n in conf]
            extra_gs = [f"{n.split('.', 1)[1]}={conf.get(n)}" for n in varying
                        if is_gradsamp_key(n) and n != "gradsamp.sampler" and n in conf]
            out[key] = (algo + (f" ({', '.join(extra_algo)})" if extra_algo else ""),
                        setting + (f" ({', '.join(extra_gs)})" if extra_gs else ""))
    return out


def _short(name: str) -> str:
    """A federated setting named without its section (lambda, strategy): the labels stay readable."""
    return name.split(".", 1)[1] if name.startswith("federated.") else name


def runs_frame(runs: list[RecordedRun]) -> pd.DataFrame:
    """One row per run: identity, protocol coordinates, labels, whole-run energy by phase with sources."""
    import pandas as pd

    names = labels(runs)
    rows = []
    for run in runs:
        key = configuration_key(run.resolved)
        last = run.points()[-1] if run.points() else None
        rows.append({
            "run_id": run.run_id, "path": str(run.path), "dataset": run.dataset, "config_key": key,
            "algorithm": names[key][0], "setting": names[key][1],
            "sampler": run.config.get("gradsamp", {}).get("sampler", "none"),
            "test_envs": run.test_envs, "trial_seed": run.trial_seed, "hparams_seed": run.hparams_seed,
            "complete": run.complete, "reported": (run.summary or {}).get("reported", "online"),
            "epochs": len(run.epochs), "sampled_epochs": sum(epoch_kind(r) == "sampled" for r in run.epochs),
            "skipped_epochs": sum(epoch_kind(r) == "skipped" for r in run.epochs),
            "train_J": last.cum_train_J if last else 0.0, "eval_J": last.cum_eval_J if last else 0.0,
            "train_sources": ", ".join(sorted(last.train_sources)) if last else "",
            "eval_sources": ", ".join(sorted(last.eval_sources)) if last else "",
            "seconds": sum(r.get("seconds", 0.0) for r in run.epochs),
        })
    return pd.DataFrame(rows)


def epochs_frame(runs: list[RecordedRun]) -> pd.DataFrame:
    """One row per epoch record: kind, every metric, cumulative energy by phase."""
    import pandas as pd

    rows = []
    for run in runs:
        train = evals = 0.0
        for record in run.epochs:
            t, _ = phase_energy(record, "train")
            e, _ = phase_energy(record, "eval")
            train, evals = train + t, evals + e
            tests = [record["metrics"].get(f"env{i}_in_acc") for i in run.test_envs]
            tests = [v for v in tests if v is not None]
            rows.append({"run_id": run.run_id, "config_key": configuration_key(run.resolved), "epoch": record["epoch"],
                         "step": record["step"], "kind": epoch_kind(record), "train_J": t, "eval_J": e,
                         "cum_train_J": train, "cum_eval_J": evals, "cum_J": train + evals,
                         "test_acc": sum(tests) / len(tests) if tests else float("nan"), **record["metrics"]})
    return pd.DataFrame(rows)
