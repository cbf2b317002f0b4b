"""What a sweep's dry run checks besides each job's config: the launcher exists, the device the jobs ask
for is here (for launchers that run jobs on this machine) and their datasets are on disk. Nothing is
imported from plugins and nothing is written."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from dagrad.utils.errors import ConfigError, DagradError, UnknownNameError
from dagrad.plugins import PluginConsent

#: launchers whose jobs run on this machine (the slurm launcher too with cluster: local or debug)
RUNS_HERE = ("local", "processes")


def dry_plan(sweep_file: str | Path, out: Optional[str | Path], consent: PluginConsent,
             order: str = "side-by-side", overrides: Sequence[str] = ()):
    """(sweep, jobs, unchecked grid points, out) as `plan` gives them (jobs in job order `order`), importing
    no plugin. Where the user consented to plugins, a point naming a component no registry holds yet is
    listed as unchecked (the plugin may register it) instead of failing the dry run."""
    from dagrad.launch.grid import check_order, identity, in_order, read_sweep, point_experiment
    from dagrad.launch.jobs import Job

    check_order(order)
    dry = consent.checking_only()
    sweep = read_sweep(sweep_file, overrides)
    out = Path(out) if out is not None else Path("runs") / f"sweep-{sweep.name}"
    jobs: dict[str, Job] = {}
    unchecked = []
    for point in sweep.points:
        try:
            exp = point_experiment(sweep, point, dry)
        except UnknownNameError:
            if not consent.may_import:
                raise
            unchecked.append(point)
            continue
        key = identity(exp)
        jobs.setdefault(key, Job(key, exp, point, out / key, consent))
    return sweep, in_order(list(jobs.values()), lambda job: job.point, order), unchecked, out


def launcher_name(sweep, name: Optional[str]) -> str:
    """The launcher a sweep runs with (as choose_launcher picks it)."""
    return name or sweep.launcher.get("name") or "processes"


def check_launcher(name: str, consent: PluginConsent, block: Optional[dict] = None) -> bool:
    """Whether the launcher is registered (False: unknown, but a consented plugin may register it); the
    sweep's `launcher:` block's options are checked against it when the block is for that launcher."""
    from dagrad.launch.runner import LAUNCHERS

    try:
        entry = LAUNCHERS.get(name)
    except UnknownNameError as exc:
        if consent.may_import:
            return False
        raise ConfigError(f"--launcher: {str(exc).split(': ', 1)[1]}") from None
    block = dict(block or {})
    if block.pop("name", name) == name:
        entry.resolve(block, "launcher")
    return True


def runs_here(sweep, name: str) -> bool:
    block = sweep.launcher if sweep.launcher.get("name", name) == name else {}
    return name in RUNS_HERE or (name == "slurm" and block.get("cluster") in ("local", "debug"))


def launcher_runs_here(launcher) -> bool:
    """Whether a built launcher runs its jobs on this machine."""
    cluster = (getattr(launcher, "options", None) or {}).get("cluster")
    return launcher.name in RUNS_HERE or (launcher.name == "slurm" and cluster in ("local", "debug"))


def check_jobs(jobs: list, here: bool) -> None:
    """The first problem every affected job would stop with, as one line naming how many it affects."""
    problems: dict[str, list] = {}
    if here and any(j.experiment.cfg.device == "cuda" for j in jobs):
        import torch

        if not torch.cuda.is_available():
            asking = [j for j in jobs if j.experiment.cfg.device == "cuda"]
            problems["device: cuda was asked for but no CUDA device is available here; use device=cpu or auto"] \
                = asking
    from dagrad.datasets.presence import absence

    seen: dict[tuple, Optional[DagradError]] = {}
    for job in jobs:
        data = job.experiment.cfg.data
        key = (data.name, data.root)
        if key not in seen:
            seen[key] = absence(data, job.experiment.spec)
        if seen[key] is not None:
            problems.setdefault(str(seen[key]), []).append(job)
    if problems:
        text, affected = next(iter(problems.items()))
        more = f"; {len(problems) - 1} more problem(s) after this one" if len(problems) > 1 else ""
        raise ConfigError(f"{text} ({len(affected)} of {len(jobs)} job(s) would fail on it{more})")
