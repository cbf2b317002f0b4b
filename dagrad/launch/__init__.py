"""Sweeps: a grid of experiments (grid.py), one folder per job named by its configuration hash
(jobs.py), launchers that run them locally, in worker processes (runner.py, worker.py) or as a Slurm job
array (slurm.py); `dagrad status` reads the folders (status.py).

    outcome = run_sweep("configs/sweeps/digits.yaml", out="runs/digits-sweep", workers=2)
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, TextIO

from dagrad.utils.atomic import make_folders, remove_empty_folders, write_text_atomic
from dagrad.utils.errors import ConfigError, StorageError
from dagrad.launch.shell_consent import check_shell_consent
from dagrad.plugins import NO_PLUGINS, PluginConsent, import_plugins

#: the names this package re-exports, imported on first use (PEP 562), so that `dagrad status` (which only
#: reads folders, dagrad.launch.status) does not import torch through the grid's registries
_LAZY = {**dict.fromkeys(("ORDERS", "GridPoint", "SweepSpec", "check_order", "describe", "read_sweep", "point_experiment"),
                         "dagrad.launch.grid"),
         **dict.fromkeys(("CONFIG_NAME", "Job", "expand", "prepare"), "dagrad.launch.jobs"),
         **dict.fromkeys(("LAUNCHERS", "JobResult", "Launcher", "LocalLauncher", "ProcessLauncher", "Progress",
                          "build_launcher", "silence_stdout", "worker_command"), "dagrad.launch.runner")}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dagrad.launch' has no attribute {name!r}")

__all__ = ["GridPoint", "SweepSpec", "Job", "JobResult", "Launcher", "LocalLauncher", "ProcessLauncher", "Progress",
           "SweepOutcome", "LAUNCHERS", "ORDERS", "build_launcher", "choose_launcher", "describe", "expand", "plan",
           "read_sweep", "point_experiment", "run_sweep", "worker_command"]


@dataclass
class SweepOutcome:
    out: Path
    jobs: list[Job]
    skipped: list[Job] = field(default_factory=list)  # already done before this launch
    results: list[JobResult] = field(default_factory=list)

    @property
    def failed(self) -> list[JobResult]:
        return [r for r in self.results if r.status not in ("done", "busy", "queued")]

    @property
    def queued(self) -> list[JobResult]:
        """Jobs submitted to a cluster (now or by an earlier launch) that have not ended yet."""
        return [r for r in self.results if r.status == "queued"]

    @property
    def elsewhere(self) -> list[JobResult]:
        """Jobs another launch was running (it holds their locks): not failures, not done here."""
        return [r for r in self.results if r.status == "busy"]


def plan(sweep: str | Path | SweepSpec, out: Optional[str | Path] = None, plugins: PluginConsent = NO_PLUGINS,
         order: str = "side-by-side", overrides: Sequence[str] = ()) -> tuple[SweepSpec, list[Job], Path]:
    """Validate the whole sweep (every job resolved, plugins only with consent) without writing anything;
    the jobs in job order `order` (grid.ORDERS). `sweep`: a sweep file, read here with the command line's
    `key=value` overrides, or one read already (`read_sweep`, overrides applied then), which is not read
    again. Plugins named in the consent (`--plugin X`) are imported first, as every worker does."""
    from dagrad.launch.grid import check_order, read_sweep
    from dagrad.launch.jobs import expand

    check_order(order)
    import_plugins(sorted(plugins.named), plugins)
    sweep = read_sweep(sweep, overrides) if isinstance(sweep, (str, Path)) else _read_already(sweep, overrides)
    out = Path(out) if out is not None else Path("runs") / f"sweep-{sweep.name}"
    return sweep, expand(sweep, out, plugins, order), out


def _read_already(sweep: SweepSpec, overrides: Sequence[str]) -> SweepSpec:
    """A sweep read already: its overrides were applied when it was read, none may come now."""
    if overrides:
        raise ConfigError("overrides apply where the sweep file is read (read_sweep), not to a sweep read already")
    return sweep


def choose_launcher(sweep: SweepSpec, name: Optional[str] = None, workers: int = 1, threads: Optional[int] = None,
                    options: Optional[dict] = None, consent: PluginConsent = NO_PLUGINS) -> tuple[Launcher, str]:
    """The launcher a sweep runs with: `name` (the command line's --launcher), else the sweep's `launcher:`
    block's name, else `processes`. The block's options apply when it names that launcher (or no launcher);
    `options` (the API's) replace them. Shell text the block gives (`setup:` lines, a `python:` command)
    runs only with `consent.allow_all` (--allow-plugins), as a plugin would. Returns the launcher and a note
    when the block was left unused."""
    from dagrad.launch.runner import build_launcher

    block = dict(sweep.launcher)
    block_name = block.pop("name", None)
    chosen = name or block_name or "processes"
    note = ""
    if options is None:
        if block_name is None or block_name == chosen:
            options = block
            check_shell_consent(block, consent)
        elif block:
            note = (f"the sweep's launcher: block is for {block_name}; --launcher {chosen} runs with its own "
                    f"defaults")
    return build_launcher(chosen, workers, options or None, threads), note


def _prepare_all(out: Path, jobs: list[Job]) -> None:
    """Write every job's config.json and the job list; if the disk refuses, remove what this call created
    (folders and files that were not there before) and raise the StorageError."""
    from dagrad.launch.jobs import CONFIG_NAME, prepare
    from dagrad.launch.labels import link_labels

    created = make_folders(out)
    written: list[Path] = []
    try:
        for job in jobs:
            new_folder = not job.folder.exists()
            new_config = not (job.folder / CONFIG_NAME).exists()
            prepare(job)
            if new_config:
                written.append(job.folder / CONFIG_NAME)
            if new_folder:
                written.append(job.folder)
        write_text_atomic(out / "jobs.json", json.dumps(
            [{"id": j.id, "job": j.name, "setting": j.point.setting} for j in jobs], indent=1) + "\n")
    except StorageError:
        for path in reversed(written):
            if path.is_dir():
                remove_empty_folders([path])
            else:
                path.unlink(missing_ok=True)
        remove_empty_folders(created)
        raise
    link_labels(out, [j.point for j in jobs], [j.id for j in jobs])  # by-label/<label> -> <hash>


def _say(stream: Optional[TextIO], text: str) -> Optional[TextIO]:
    """Print to `stream`; a closed pipe (`| head`) silences the sweep instead of stopping it."""
    if stream is None:
        return None
    try:
        print(text, file=stream, flush=True)
    except BrokenPipeError:
        from dagrad.launch.runner import silence_stdout

        silence_stdout()
        return None
    return stream


def run_sweep(sweep: str | Path | SweepSpec, out: Optional[str | Path] = None, workers: int = 1,
              launcher: Optional[Launcher] = None, stream: Optional[TextIO] | str = "stdout",
              plugins: PluginConsent = NO_PLUGINS, order: str = "side-by-side",
              overrides: Sequence[str] = ()) -> SweepOutcome:
    """Run every job that is not done yet (resuming partial ones), in job order `order` (side-by-side: the
    settings compared run next to each other, at the same time with several workers; grouped: setting after
    setting); returns what happened to each. `sweep`: a sweep file or one read already (see `plan`);
    `overrides`: `key=value` items applied to the sweep file (grid.py).
    Progress goes to `stream` (default: sys.stdout at call time; None: silent). Plugins the sweep's
    configs name are imported, here and in every worker, only with the consent `plugins`."""
    from dagrad.launch.runner import ProcessLauncher, Progress

    stream = sys.stdout if stream == "stdout" else stream
    from dagrad.launch.launcher_mark import LauncherMark
    from dagrad.launch.runner import MarkedProgress
    from dagrad.launch.preflight import check_jobs, launcher_runs_here

    sweep, jobs, out = plan(sweep, out, plugins, order, overrides)
    launcher = launcher or ProcessLauncher(workers)
    check_jobs(jobs, launcher_runs_here(launcher))  # what every job would stop at, before anything is written
    _prepare_all(out, jobs)
    states = {j.id: j.state() for j in jobs}
    # jobs another launch is running go last: by then they may be done (the worker then says so)
    todo = [j for j in jobs if states[j.id] not in ("done", "running")] + [j for j in jobs if states[j.id] == "running"]
    skipped = [j for j in jobs if states[j.id] == "done"]
    running = sum(s == "running" for s in states.values())
    elsewhere = f", {running} running in another launch" if running else ""
    stream = _say(stream, f"sweep {sweep.name}: {len(jobs)} jobs in {out} ({len(skipped)} already done, "
                          f"{sum(s == 'partial' for s in states.values())} to resume or restart{elsewhere}); "
                          f"launcher {launcher.name}")
    with LauncherMark(out) as mark:  # `dagrad status --watch` follows the sweep until this launch ends
        progress = MarkedProgress(len(jobs), len(skipped), stream, mark, todo)
        results = launcher.launch(todo, progress)
    stream = progress.stream
    outcome = SweepOutcome(out, jobs, skipped, results)
    if outcome.elsewhere:
        stream = _say(stream, f"{len(outcome.elsewhere)} job(s) are running in another launch (left alone; "
                              f"relaunch later to see them done): "
                              + ", ".join(r.job.id for r in outcome.elsewhere))
    if outcome.queued:
        stream = _say(stream, f"{len(outcome.queued)} job(s) queued or running on the cluster; follow them with: "
                              f"dagrad status {out}")
    if outcome.failed:
        stream = _say(stream, f"{len(outcome.failed)} job(s) did not finish:")
        for r in outcome.failed:
            stream = _say(stream, f"  {r.job.id} {r.job.name}: {r.status} (exit {r.returncode}); log {r.job.log}")
    return outcome
