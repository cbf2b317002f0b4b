"""`dagrad.sweep`: run a grid of experiments from a notebook, as `dagrad sweep` does; a `Sweep` to read.

`launch_sweep` and `dry_run` are the one orchestration of a sweep that `dagrad sweep` and `dagrad.sweep` share:
the sweep file is read once, the launcher chosen from it, then the jobs planned and launched."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import pandas as pd

from dagrad.api import arguments
from dagrad.api.configs import consent
from dagrad.api.runs import Run, load_runs
from dagrad.utils.errors import ConfigError
from dagrad.utils.notices import warnings_once
from dagrad.plugins import NO_PLUGINS, PluginConsent, import_plugins

if TYPE_CHECKING:
    from dagrad.launch import SweepOutcome
    from dagrad.launch.grid import SweepSpec


@dataclass
class Sweep:
    """A sweep folder after a launch: `jobs` (one row per job: id, name, setting, state, this launch's
    status, log), `failed` (the jobs of this launch that did not finish), `runs` and `report()`."""

    folder: Path
    jobs: pd.DataFrame
    failed: list[str]

    @property
    def runs(self) -> list[Run]:
        """Every run in the sweep folder, read now (finished or not)."""
        return load_runs(self.folder)

    def report(self, *, selection: str = "training_domain", format: str = "md"):
        """`dagrad.report` of this sweep's folder."""
        from dagrad.api.reports import report

        return report(self.folder, selection=selection, format=format)

    def __repr__(self) -> str:
        states = self.jobs["state"].value_counts().to_dict() if len(self.jobs) else {}
        return f"Sweep({str(self.folder)!r}, {len(self.jobs)} jobs: {states}, failed this launch: {len(self.failed)})"


def sweep(sweep_yaml: str | Path, *, out: Optional[str | Path] = None, launcher: Optional[str] = None,
          workers: int = 1, launcher_options: Optional[dict[str, Any]] = None, plugins: Sequence[str] = (),
          allow_plugins: bool = False, order: str = "side-by-side", overrides: Sequence[str] = ()) -> Sweep:
    """Run every job of a sweep that is not done yet (resuming partial ones), as `dagrad sweep` does;
    progress lines go to stdout. A job that fails does not raise: it is listed in `Sweep.failed` (with
    its log) and named in a warning. A bad sweep file raises its ConfigError before anything runs. `launcher`:
    as `--launcher` (default: the sweep's `launcher:` block, else processes); `launcher_options` replace the
    block's options. `plugins` / `allow_plugins`: the plugin consent, as for `dagrad.train` (every worker
    inherits it). `order`: as `--order` (side-by-side: the settings compared run next to each other;
    grouped: setting after setting). `overrides`: `key=value` items, as on `dagrad sweep`'s command line."""
    import torch

    from dagrad.launch.grid import check_order

    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers!r}")
    if not isinstance(order, str):
        raise ConfigError(f"order: unknown job order {order!r}; choose one of: side-by-side, grouped")
    check_order(order)
    sweep_yaml = arguments.path(sweep_yaml, "sweep_yaml")
    out = arguments.path(out, "out", optional=True)
    launcher_options = arguments.options(launcher_options, "launcher_options")
    if launcher is not None and not isinstance(launcher, str):
        raise ConfigError(f"launcher: expected a launcher's name, got {type(launcher).__name__}")
    agreed = consent(plugins, allow_plugins)
    with warnings_once():
        threads = torch.get_num_threads()
        try:
            outcome = launch_sweep(sweep_yaml, out=out, launcher=launcher, workers=workers,
                                   launcher_options=launcher_options, plugins=agreed, order=order,
                                   overrides=overrides, note=lambda text: warnings.warn(text, stacklevel=4))
        finally:  # the local launcher sets torch's threads per job in this process: give the caller its own back
            torch.set_num_threads(threads)
        results = {r.job.id: r for r in outcome.results}
        rows = []
        for job in outcome.jobs:
            result = results.get(job.id)
            rows.append({"id": job.id, "job": job.name, "setting": job.point.setting, "state": job.state(),
                         "this_launch": result.status if result else "already done",
                         "seconds": result.seconds if result else float("nan"), "log": str(job.log)})
        failed = [f"{r.job.id} ({r.job.name}): {r.status}, log {r.job.log}" for r in outcome.failed]
        if failed:
            warnings.warn(f"{len(failed)} sweep job(s) did not finish: {'; '.join(failed)}", RuntimeWarning,
                          stacklevel=2)
        return Sweep(Path(outcome.out), pd.DataFrame(rows), failed)


def launch_sweep(sweep_file: str | Path, *, out: Optional[Path] = None, launcher: Optional[str] = None,
                 workers: int = 1, threads: Optional[int] = None, launcher_options: Optional[dict] = None,
                 plugins: PluginConsent = NO_PLUGINS, order: str = "side-by-side", overrides: Sequence[str] = (),
                 note: Callable[[str], None] = print) -> "SweepOutcome":
    """A sweep launched, as `dagrad sweep` and `dagrad.sweep` launch it: the consented plugins imported (one may
    register the launcher), the sweep file read once (with its `key=value` overrides), the launcher chosen
    from `launcher` or the file's `launcher:` block (`note` gets the line when that block goes unused), then
    every job not done yet run (dagrad.launch.run_sweep)."""
    from dagrad.launch import choose_launcher, read_sweep, run_sweep

    import_plugins(sorted(plugins.named), plugins)
    spec = read_sweep(sweep_file, overrides)
    runner, text = choose_launcher(spec, launcher, workers, threads, options=launcher_options, consent=plugins)
    if text:
        note(text)
    return run_sweep(spec, out, launcher=runner, plugins=plugins, order=order)


@dataclass
class DryRun:
    """What a sweep would run, listed without running or importing anything: `jobs` (each with its id and
    state), the grid points left `unchecked` (they name a component only a plugin may register), the folder
    `out` and the `launcher`'s name (`launcher_known`: registered here)."""

    spec: "SweepSpec"
    jobs: list
    unchecked: list
    out: Path
    launcher: str
    launcher_known: bool

    def check(self) -> None:
        """Raise the first problem that would stop every job it affects (the device, the datasets), as one
        line naming how many jobs it affects."""
        from dagrad.launch.preflight import check_jobs, runs_here

        check_jobs(self.jobs, self.launcher_known and runs_here(self.spec, self.launcher))


def dry_run(sweep_file: str | Path, *, out: Optional[Path] = None, launcher: Optional[str] = None,
            plugins: PluginConsent = NO_PLUGINS, order: str = "side-by-side",
            overrides: Sequence[str] = ()) -> DryRun:
    """A sweep's dry run (`dagrad sweep --dry-run`): every job resolved and the launcher (and its `launcher:`
    block) checked, importing no plugin; `DryRun.check` then looks for what would make the jobs fail here."""
    from dagrad.launch.preflight import check_launcher, dry_plan, launcher_name

    spec, jobs, unchecked, out = dry_plan(sweep_file, out, plugins, order, overrides)
    name = launcher_name(spec, launcher)
    return DryRun(spec, jobs, unchecked, out, name, check_launcher(name, plugins, spec.launcher))
