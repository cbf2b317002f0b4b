"""`dagrad.sweep`: run a grid of experiments from a notebook, as `dagrad sweep` does; a `Sweep` to read."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import pandas as pd

from dagrad.api import arguments
from dagrad.api.configs import consent
from dagrad.api.runs import Run, load_runs
from dagrad.utils.errors import ConfigError
from dagrad.utils.notices import warnings_once
from dagrad.plugins import import_plugins


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

    from dagrad.launch import choose_launcher, read_sweep, run_sweep
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
        import_plugins(sorted(agreed.named), agreed)  # a plugin may register the launcher itself
        runner, note = choose_launcher(read_sweep(sweep_yaml, overrides), launcher, workers,
                                       options=launcher_options, consent=agreed)
        if note:
            warnings.warn(note, stacklevel=2)
        threads = torch.get_num_threads()
        try:
            outcome = run_sweep(sweep_yaml, out, launcher=runner, plugins=agreed, order=order,
                                overrides=overrides)
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
