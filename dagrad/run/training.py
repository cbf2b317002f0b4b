"""One experiment run in its folder: `train_run` holds the folder's lock (and, under torchrun, the process
group) around the Trainer's epoch loop, and turns a failed write into the command that continues."""

from __future__ import annotations

import warnings
from pathlib import Path

from dagrad.config.experiment import Experiment, resolve
from dagrad.config.schema import ExperimentConfig
from dagrad.plugins import NO_PLUGINS, PluginConsent
from dagrad.records.files import RECORDS_NAME
from dagrad.run import distributed
from dagrad.run.engine import Trainer
from dagrad.run.progress import RunProgress
from dagrad.utils.errors import StorageError
from dagrad.run.folder import shared_run_folder


def train_run(experiment: Experiment | ExperimentConfig, out_dir: str | Path, resume: bool = False,
              progress: bool | str | RunProgress = True, *, restart: bool = False,
              plugins: PluginConsent = NO_PLUGINS) -> Path:
    """Run (or resume) one experiment in `out_dir`, holding the folder's lock throughout; returns its
    record file. `restart` moves a previous attempt aside first; `plugins` is the consent a config's
    plugins need (see dagrad.plugins). See dagrad.run.folder for what happens to what is already there."""
    exp = experiment if isinstance(experiment, Experiment) else resolve(experiment, plugins)
    with distributed.session(exp.cfg.device) as dist, shared_run_folder(dist, out_dir, resume, restart) as resume:
        try:
            return _trainer(exp, out_dir, resume, progress).run()
        except StorageError as exc:
            raise _way_on(exc, Path(out_dir), exp) from None


def _trainer(exp: Experiment, out_dir: str | Path, resume: bool, progress: bool | str | RunProgress) -> Trainer:
    """The run's Trainer. When resuming, the warnings of its construction (the energy meter's, the data's)
    are shown once the checkpoint has been found to fit, so an unusable one is a single line."""
    if not resume:
        return Trainer(exp, out_dir, resume=resume, progress=progress)
    with warnings.catch_warnings(record=True) as held:
        warnings.simplefilter("always")
        trainer = Trainer(exp, out_dir, resume=resume, progress=progress)
    for w in held:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    return trainer


def _way_on(exc: StorageError, out: Path, exp: Experiment) -> StorageError:
    """A failed write once the run has written its records: the same command would find "already holds a
    run", so the message names the one that continues it (from its last checkpoint, or afresh without one)."""
    text = str(exc)
    if not (out / RECORDS_NAME).is_file() or "run again" not in text:
        return exc
    from dagrad.run.resuming import resume_command

    return StorageError(text.replace("run again", f"then continue with: {resume_command(out, exp.cfg.plugins)}"))
