"""One training's orchestration, shared by `dagrad train` and `dagrad.train`: which experiment (a config,
or the one recorded in the run folder when resuming), which folder, then the run.

    plan = training("experiments/pacs", ["algorithm.name=coral"], out="runs/pacs-coral")
    records = plan.run()        # the record file (dagrad.run.training holds the folder's lock meanwhile)

Every config file, and a resumed run's records, is read once; nothing is written before `run`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from dagrad.api.configs import ConfigLike, experiment, experiment_to_resume
from dagrad.config.experiment import Experiment, default_run_folder
from dagrad.plugins import NO_PLUGINS, PluginConsent
from dagrad.run.resuming import resume_command


@dataclass(frozen=True)
class Training:
    """An experiment checked and its run folder chosen, not started yet."""

    experiment: Experiment
    folder: Path
    resume: bool = False
    restart: bool = False

    def resume_command(self) -> str:
        """The shell command that continues this run once it is interrupted."""
        return resume_command(self.folder, self.experiment.cfg.plugins)

    def run(self, progress: Any = True) -> Path:
        """Train (or continue) the run in its folder; returns its record file (dagrad.federated.route.train_experiment)."""
        from dagrad.federated.route import train_experiment as train  # a federated experiment runs on Flower, any other centrally

        return train(self.experiment, self.folder, resume=self.resume, restart=self.restart, progress=progress)


def training(config: ConfigLike = None, overrides: Optional[Mapping[str, Any] | Sequence[str]] = None, *,
             out: Optional[Path] = None, resume: bool = False, restart: bool = False,
             plugins: PluginConsent = NO_PLUGINS, entries: Optional[Sequence[str]] = None) -> Training:
    """The training `dagrad train` / `dagrad.train` start: with `resume` and a folder `out`, the run recorded
    there (its recorded config with the overrides on top when no config is given; else the config given,
    which must describe that run); otherwise the config with its overrides, in `out` or the experiment's
    default folder (runs/<name>-<run id>). `entries`: the plugins to add to the config's list (default:
    those the consent `plugins` names)."""
    if resume and out is not None:
        exp = experiment_to_resume(out, config, overrides, plugins, entries)
    else:
        exp = experiment(config, overrides, plugins, entries)
    return Training(exp, out if out is not None else default_run_folder(exp), resume, restart)
