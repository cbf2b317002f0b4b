"""Model selection with DomainBed's semantics, over hparams seeds and over checkpoints (epochs).

A *group* is the runs of one configuration (frames.configuration_key) on one test environment and
one trial seed, differing only in hparams_seed. Methods (DomainBed's model_selection.py):

- training_domain: in each run the epoch with the best mean `out` accuracy of the training
  environments; across runs the best of those. Reported: the test environment's `in` accuracy there.
- leave_one_out: needs, per hparams seed, the run with test envs {t} and a run with test envs {t, v}
  for every other environment v. At each step, validation = mean over v of the {t, v} run's accuracy
  on v's `in` split; pick the best (step, hparams) and report the {t} run's env t `in` accuracy there.
- oracle: the LAST checkpoint of each run (no early stopping); hparams picked by the test
  environment's `out` accuracy.
- last: the final model of the default hparams (hparams_seed 0, else the lowest): no selection at all.

A run that averages weights (SWAD: summary.reported == "averaged") offers one model only, its final
averaged model, to every method, as SWAD reports it.

Ties: among candidates with exactly the same validation accuracy, the earlier epoch wins, then the lower
hparams seed (DomainBed's argmax keeps the first). A selected row's `tied` counts the other candidates it
beat only by this rule (other epochs of its run, other hparams seeds' choices); the report names every
configuration where a tie decided a selection.

Only single-test-environment runs fill table cells; pairs serve leave_one_out. Runs under
another data protocol (WILDS's) are left to that protocol's own selection (dagrad.analysis.wilds).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Optional

import numpy as np

from dagrad.utils.errors import ConfigError
from dagrad.analysis.frames import configuration_key, control_key, family_key, labels
from dagrad.analysis.runs import Point, RecordedRun

if TYPE_CHECKING:  # pandas costs half a second to import; only reports need it
    import pandas as pd

METHODS = ("training_domain", "leave_one_out", "oracle", "last")
TIE_RULE = "ties go to the earlier epoch, then the lower hparams seed"
DESCRIPTIONS = {
    "training_domain": "training-domain validation (best mean `out` accuracy of the training environments "
                       "over epochs and hparams)",
    "leave_one_out": "leave-one-domain-out cross-validation (DomainBed)",
    "oracle": "test-domain validation (oracle): last checkpoint, hparams by test-environment `out` accuracy",
    "last": "last: final model of the default hparams, no selection",
}


@dataclass
class Choice:
    run: RecordedRun
    point: Point
    val_acc: float
    tied: int = 0  # other candidates with the same validation accuracy, passed over by the tie rule


def _mean(values: list[Optional[float]]) -> float:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else float("nan")


def _best(choices: list[Choice]) -> Optional[Choice]:
    """The first choice with the highest finite validation accuracy (DomainBed's argmax: the tie rule),
    its `tied` grown by the choices it beat only by coming first."""
    best = None
    for choice in choices:
        if np.isfinite(choice.val_acc) and (best is None or choice.val_acc > best.val_acc):
            best = choice
    if best is None:
        return None
    tied = sum(c is not best and c.val_acc == best.val_acc for c in choices)
    return replace(best, tied=best.tied + tied)


def _training_domain(run: RecordedRun, test_env: int, pairs: dict) -> Optional[Choice]:
    return _best([Choice(run, p, _mean([p.metrics.get(f"env{i}_out_acc") for i in run.train_envs]))
                  for p in run.points()])


def _oracle(run: RecordedRun, test_env: int, pairs: dict) -> Optional[Choice]:
    points = run.points()
    return Choice(run, points[-1], points[-1].metrics.get(f"env{test_env}_out_acc", float("nan"))) if points else None


def _leave_one_out(run: RecordedRun, test_env: int, pairs: dict) -> Optional[Choice]:
    others = [v for v in range(len(run.environments)) if v != test_env]
    if not others or any(v not in pairs for v in others):
        return None
    by_step = {v: {p.step: p for p in pairs[v].points()} for v in others}
    choices = []
    for point in run.points():
        found = [by_step[v].get(point.step) for v in others]
        if all(p is not None for p in found):
            choices.append(Choice(run, point, _mean([p.metrics.get(f"env{v}_in_acc") for v, p in zip(others, found)])))
    return _best(choices)


PER_RUN = {"training_domain": _training_domain, "oracle": _oracle, "leave_one_out": _leave_one_out}


def select(runs: list[RecordedRun], method: str = "training_domain") -> pd.DataFrame:
    """One row per (dataset, configuration, test env, trial seed): the chosen model and its cost.

    Energy columns: `sel_*` = spent up to and including the chosen epoch; `run_*` = the chosen run's
    whole training; `search_J` = every run the selection looked at (all hparams, LOO pairs), whole runs."""
    import pandas as pd

    if method not in METHODS:
        raise ConfigError(f"selection {method!r} is unknown; choose one of: {', '.join(METHODS)}")
    runs = [r for r in runs if r.complete and r.header.get("data", {}).get("protocol", "domainbed") == "domainbed"]
    names = labels(runs)
    groups: dict[tuple, list[RecordedRun]] = defaultdict(list)
    pairs: dict[tuple, dict[int, RecordedRun]] = defaultdict(dict)
    for run in runs:
        key = configuration_key(run.resolved)
        if len(run.test_envs) == 1:
            groups[(key, run.test_envs[0], run.trial_seed)].append(run)
        elif len(run.test_envs) == 2:
            t, v = run.test_envs
            pairs[(key, t, run.trial_seed, run.hparams_seed)][v] = run
            pairs[(key, v, run.trial_seed, run.hparams_seed)][t] = run
    rows = []
    for (key, test_env, trial), members in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        members = sorted(members, key=lambda r: r.hparams_seed)
        if method == "last":
            final = members[0].points()
            choice = Choice(members[0], final[-1], float("nan")) if final else None
            looked = [members[0]]
        else:
            found = [PER_RUN[method](r, test_env, pairs.get((key, test_env, trial, r.hparams_seed), {}))
                     for r in members]
            choice = _best([c for c in found if c is not None])
            looked = members + [p for r in members for p in pairs.get((key, test_env, trial, r.hparams_seed),
                                                                      {}).values()] \
                if method == "leave_one_out" else members
        if choice is None:
            continue
        rows.append(_row(choice, test_env, names[key], key, method, looked, len(members)))
    return pd.DataFrame(rows, columns=COLUMNS)


COLUMNS = ["dataset", "algorithm", "setting", "config_key", "family", "control", "sampler", "test_env", "env_name", "trial_seed",
           "hparams_seed", "run_id", "epoch", "step", "val_acc", "test_acc", "sel_train_J", "sel_eval_J",
           "run_train_J", "run_eval_J", "run_updates", "train_sources", "eval_sources", "search_J", "n_hparams", "method",
           "path", "tied"]


def _row(choice: Choice, test_env: int, names: tuple[str, str], key: str, method: str, looked: list[RecordedRun],
         n_hparams: int) -> dict:
    run, point = choice.run, choice.point
    whole = run.points()[-1]  # the whole run (for SWAD this includes the averaged model's final evaluation)
    envs = run.environments
    return {
        "dataset": run.dataset, "algorithm": names[0], "setting": names[1], "config_key": key,
        "family": family_key(run.resolved), "control": control_key(run.resolved),
        "sampler": run.config.get("gradsamp", {}).get("sampler", "none"),
        "test_env": test_env, "env_name": envs[test_env] if test_env < len(envs) else str(test_env),
        "trial_seed": run.trial_seed, "hparams_seed": run.hparams_seed, "run_id": run.run_id,
        "epoch": point.epoch if point.epoch is not None else "averaged", "step": point.step,
        "val_acc": choice.val_acc, "test_acc": point.metrics.get(f"env{test_env}_in_acc", float("nan")),
        "sel_train_J": point.cum_train_J, "sel_eval_J": point.cum_eval_J,
        "run_train_J": whole.cum_train_J, "run_eval_J": whole.cum_eval_J,
        "run_updates": run.epochs[-1]["updates"] if run.epochs else 0,
        "train_sources": ", ".join(sorted(whole.train_sources)), "eval_sources": ", ".join(sorted(whole.eval_sources)),
        "search_J": sum(r.points()[-1].cum_train_J + r.points()[-1].cum_eval_J for r in looked if r.points()),
        "n_hparams": n_hparams, "method": method, "path": str(run.path), "tied": choice.tied,
    }
