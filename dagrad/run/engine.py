"""The epoch loop. It knows the Algorithm contract and nothing of any particular algorithm; GradSamp,
weight averaging (SWAD) and energy metering plug in from outside.

Each epoch is either trained (steps_per_epoch updates) or, when GradSamp's schedule says so, sampled.
Then every split is evaluated, one record is appended and a checkpoint written, both atomically, so an
interrupted run resumes to the same result (on CPU, with a fixed seed).

The step loop never waits for the device: batches come pinned and are copied asynchronously, the
statistics `update` returns stay tensors and are summed on the device, and they are read once, when
the epoch's record is written. Everything between the metered phases (startup, record writes,
checkpoints) is metered as `other` (dagrad.energy.ledger), so a record's phases add up to the job; one-off
warm-up (thread pools, first allocations, kernel caches, evaluation workers) sits in a `setup` window before
the first epoch (dagrad.run.warmup), and every window records the conditions it ran under."""

from __future__ import annotations

import contextlib
import itertools
import platform
import warnings
import weakref
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch

from dagrad import datasets
from dagrad.run import distributed
from dagrad.algorithms import build as build_algorithm
from dagrad.algorithms.registry import featurizer_input_shape
from dagrad.averaging import build_averager
from dagrad.run.checkpoint import CHECKPOINT_NAME, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from dagrad.run.checkpoint_checks import check_payload
from dagrad.config.schema import ExperimentConfig, to_dict
from dagrad.datasets.loading import (START_METHOD, batches_on, refuse_worker_bootstrap, start_fork_server,
                                    to_device)
from dagrad.energy import build_meter
from dagrad.energy.flops import FlopsTally
from dagrad.energy.hardware import describe_compute
from dagrad.energy.ledger import Gaps, idle_power, job_energy, measure_idle_power
from dagrad.energy.ranks import summed_over_ranks
from dagrad.energy.reading import Reading
from dagrad.run.epochs import SCHEDULED, EpochKind, EpochOutcome, StepSums
from dagrad.utils.errors import CheckpointError, ConfigError, StorageError
from dagrad.run.evaluation import evaluate
from dagrad.run.folder import shared_run_folder
from dagrad.config.experiment import Experiment, resolve
from dagrad.gradsamp import GradSamp
from dagrad.gradsamp.ranks import settle_draw
from dagrad.records.metrics import env_mean
from dagrad.models.hook import RunOutputs
from dagrad.networks import build_featurizer
from dagrad.run.numerics import Numerics
from dagrad.plugins import NO_PLUGINS, PluginConsent
from dagrad.run.progress import RunProgress
from dagrad.records.distributed_section import distributed_section
from dagrad.records.files import FORMAT, RECORDS_NAME, RecordFile
from dagrad.registry import target_module
from dagrad.utils.seeding import seed_everything, seed_hash
from dagrad.tracking import Trackers
from dagrad.version import __version__
from dagrad.run.warmup import warm_up

GUARD_EXAMPLES_PER_ENV = 32


def resolve_device(name: str) -> torch.device:
    """The run's device; CUDA as `cuda:N` (torch's current device), the one GPU the job uses and meters.
    cuDNN's determinism and TF32 flags are set by `Numerics` (DomainBed's by default)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    elif name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for but no CUDA device is available; use device=cpu or auto")
    if name == "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device(name)


class Trainer:
    """Builds everything a run needs (before writing anything), then trains epoch by epoch."""

    rank = 0  # this process's rank under multi-process training: trackers write on rank 0 only

    def __init__(self, experiment: Experiment | ExperimentConfig, out_dir: str | Path, resume: bool = False,
                 progress: bool | str | RunProgress = True):
        refuse_worker_bootstrap()
        exp = experiment if isinstance(experiment, Experiment) else resolve(experiment)
        cfg = exp.cfg
        self.dist = distributed.current()  # one process, or this rank of a torchrun job (dagrad.run.distributed)
        self.rank = self.dist.rank
        self.exp, self.cfg, self.out = exp, cfg, Path(out_dir)
        self.progress = RunProgress.of(progress if self.dist.main else False)
        self.seed = exp.seed
        seed_everything(self.seed)
        self.device = resolve_device(cfg.device)
        if cfg.data.num_workers > 0:  # the workers' fork server imports torch while this process sets up
            start_fork_server([target_module(exp.dataset.builder)])
        # first, so startup is metered (as `other`); a node's RAPL is read by its first process only
        self.meter = build_meter(cfg.energy, str(self.device), read_package=self.dist.reads_node)
        self.gaps = Gaps(self.meter)
        self._meter_closer = weakref.finalize(self, self.meter.close)  # a constructor that fails closes it too
        self.numerics = Numerics(self.device, cfg.precision, cfg.deterministic, cfg.channels_last)
        guard_examples = GUARD_EXAMPLES_PER_ENV if cfg.gradsamp.sampler != "none" and cfg.gradsamp.guard else 0
        self.data = datasets.build(exp.data_config(), cfg.trial_seed, cfg.eval_mode, guard_per_env=guard_examples)
        featurizer = build_featurizer(cfg.network.name, exp.network_options,
                                      featurizer_input_shape(cfg.algorithm.name, self.data.input_shape))
        self.algorithm = build_algorithm(cfg.algorithm.name, exp.hparams, featurizer, self.data.num_classes,
                                         len(self.data.train_envs), input_shape=self.data.input_shape).to(self.device)
        self.numerics.prepare(self.algorithm)
        self.steps = cfg.steps_per_epoch or self.data.default_steps_per_epoch()
        pin = self.device.type == "cuda"
        self.stream = self.data.training_loaders(self.steps, self.seed, unlabelled=self.algorithm.uses_unlabeled,
                                                 pin_memory=pin, shard=self.dist.shard)
        self.eval_loader = self.data.eval_loader(pin_memory=pin, shard=self.dist)
        self.gradsamp = None
        if cfg.gradsamp.sampler != "none":
            guard = self.data.fixed_batch(GUARD_EXAMPLES_PER_ENV) if cfg.gradsamp.guard else None
            guard = tuple(t.to(self.device) for t in guard) if guard else None
            self.gradsamp = GradSamp(cfg.gradsamp, self.seed, guard)
        self.averager = build_averager(cfg.averaging, self.algorithm)
        self.flops = FlopsTally(cfg.energy.count_flops)
        self.hash = exp.run_id
        self.outputs = RunOutputs(self)  # kept models and per-example predictions (dagrad.models)
        self.start_epoch, self.updates, self.stopped = 0, 0, False
        self._setup_energy: Optional[dict] = None  # this process's setup window, until an epoch records it
        records_path = self.out / RECORDS_NAME
        if resume:
            saved = self._restore()
            self.records = RecordFile.resume(records_path, self.start_epoch, saved) if self.dist.main else None
        elif records_path.exists():
            raise ConfigError(f"{self.out} already holds a run; pass --resume to continue it, --restart to move it "
                              f"aside and start afresh, or choose another --out")
        else:
            self.records = RecordFile(records_path)
        if self.dist.active:  # rank 0's records on every rank; the others never write them
            self.records = RecordFile(records_path, self.dist.broadcast_object(
                self.records.lines if self.dist.main else None), write=self.dist.main)
        self.dist.prepare(self.algorithm)  # rank 0's model everywhere; gradients averaged before each step
        self.trackers = Trackers(cfg.tracking, self.out, self.rank)  # packages checked; nothing written yet

    # ------------------------------------------------------------------ the loop
    def run(self) -> Path:
        """Train the remaining epochs; returns the record file."""
        with self._job():
            return self._run_epochs()

    @contextlib.contextmanager
    def _job(self) -> Iterator[None]:
        """The run's numerics in force while it trains (the previous flags restored after), the meter
        closed at the end."""
        restore = self.numerics.apply()
        try:
            yield
        finally:
            restore()
            self.gaps.pause()
            self.meter.close()
            self.trackers.close()

    def _run_epochs(self) -> Path:
        self.progress.start(self.out, f"{self.cfg.algorithm.name} on {self.cfg.data.name}", self.cfg.epochs,
                            self.start_epoch, self.data.test_envs, self.data.train_envs)
        if not self.records.lines:
            self.idle = self._idle_baseline()
            self.records.append(self._header())
        self.trackers.start(self.records)  # mirrors the records so far, then every line appended
        if self.start_epoch < self.cfg.epochs and not self.stopped:  # an epoch will carry the setup window
            self._setup()
        for epoch in self.progress.over_epochs(range(self.start_epoch, self.cfg.epochs)):
            if self.stopped:
                break
            torch.manual_seed(seed_hash(*self.dist.seed_parts(self.seed, "epoch", epoch)))  # dropout etc.: per epoch
            other_energy = self.gaps.take()  # since the last epoch's eval: its record, its checkpoint (or startup)
            with self.meter.window("train") as train_energy:
                outcome = self._train_or_sample(epoch)
                if self.gradsamp is not None:  # the epoch-end snapshot is GradSamp's cost: metered here
                    self.gradsamp.observe(self.algorithm, outcome.kind, outcome.fallback)
            with self.meter.window("eval") as eval_energy:
                metrics, eval_flops = evaluate(self.algorithm, self.eval_loader, self.device, self.flops,
                                               self.numerics)
                averaged = self._observe_averager(metrics, outcome.kind)
                after_validation = getattr(self.algorithm, "after_validation", None)
                if after_validation is not None:  # ERM++'s plateau schedule reads the validation loss
                    after_validation(env_mean(metrics, self.data.train_envs, "out", "loss"))
            self.gaps.resume()
            if self.dist.active:  # every rank's figures, summed or averaged (rank 0 writes them)
                train_energy, eval_energy, other_energy = summed_over_ranks(self.dist, train_energy, eval_energy,
                                                                            other_energy)
                outcome.flops, eval_flops = self.dist.total(outcome.flops, eval_flops)
                if self.dist.check_every_epoch:
                    self.dist.check_same_model(self.algorithm, f"after epoch {epoch}")
            self.records.append(self._epoch_record(epoch, outcome, metrics, averaged, train_energy, eval_energy,
                                                   eval_flops, other_energy))
            self.progress.epoch_done(self.records.lines[-1])
            self.outputs.after_epoch(epoch, metrics, self.algorithm)
            self.stopped = bool(self.averager and self.averager.should_stop())
            self._checkpoint(epoch + 1)
            self.outputs.after_checkpoint()
        self.progress.close()
        self.dist.check_stopped_together(len(self.records.lines), self.updates, self.stopped)
        if not any(line["type"] == "summary" for line in self.records.lines):
            self._finish()
        return self.records.path

    def _setup(self) -> None:
        """One-off start-up costs in a `setup` window of their own (dagrad.run.warmup), recorded with the first
        epoch this process runs, so that epoch 0's `train` holds training only."""
        self.gaps.pause()
        with self.meter.window("setup") as reading:
            done = warm_up(self.algorithm, self.data.input_shape, self.data.batch_size * len(self.data.train_envs),
                           self.device, self.numerics, self.eval_loader)
        self.gaps.resume()
        reading, = summed_over_ranks(self.dist, reading)
        self._setup_energy = {**reading.to_dict(), "warm_up": done}

    def _train_or_sample(self, epoch: int) -> EpochOutcome:
        """One epoch's work: trained, or sampled by GradSamp (then trained anyway if the draw is refused and
        the fallback says so)."""
        outcome = EpochOutcome()
        if self.gradsamp is not None and self.gradsamp.wants_sample(epoch):
            drawn = self.gradsamp.sample(self.algorithm, self.algorithm.optimizers(), epoch,
                                         predict=self._predict, meter=self.meter)
            outcome = settle_draw(self.dist, EpochOutcome(drawn.kind, drawn.fallback, drawn.stats), self.algorithm)
            if outcome.kind in SCHEDULED and self.averager is not None:
                self.averager.after_step(self.algorithm)  # the draw counts as one iterate of its segment
        if outcome.trained:
            outcome.update_stats, outcome.flops = self._train_steps(epoch)
        return outcome

    def _train_steps(self, epoch: int) -> tuple[dict, float]:
        sums = StepSums()
        total_flops, skipped = 0.0, 0
        budget = self.cfg.epochs * self.steps
        channels_last = self.numerics.channels_last
        steps = self.progress.over_steps(self.stream.epoch(epoch), self.steps, epoch)
        for i, (labelled, unlabelled, n_skipped) in enumerate(steps):
            labelled = batches_on(self.device, labelled, channels_last)
            unlabelled = [to_device(x, self.device, channels_last) for x in unlabelled] if unlabelled else None
            self.algorithm.progress = (epoch * self.steps + i) / budget
            key = ("train", tuple(tuple(x.shape) for x, _ in labelled))
            with self.numerics.autocast():
                out, flops = self.flops.run(key, lambda: self.algorithm.update(labelled, unlabelled),
                                            period=self.algorithm.flops_period)
            if self.averager is not None:
                self.averager.after_step(self.algorithm)
            total_flops += flops
            skipped += n_skipped
            self.updates += 1
            sums.add(out)
        means = sums.means()  # the epoch's one read of the device
        if skipped:
            means["skipped_examples"] = skipped
        self.dist.average_buffers(self.algorithm)  # BatchNorm statistics: the same model on every rank
        return self.dist.mean_stats(means), total_flops

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        """The model's logits under the run's autocast, as float32 (for GradSamp's guard)."""
        with self.numerics.autocast():
            return self.algorithm.predict(to_device(x, self.device, self.numerics.channels_last)).float()

    def _observe_averager(self, metrics: dict[str, float], kind: EpochKind) -> Optional[dict[str, float]]:
        if self.averager is None:
            return None
        self.averager.after_epoch(self.algorithm, env_mean(metrics, self.data.train_envs, "out", "loss"), kind)
        model = self.averager.averaged_module()
        return evaluate(model, self.eval_loader, self.device, numerics=self.numerics)[0] if model is not None else None

    def _finish(self) -> None:
        """The summary line: which model is reported (SWAD's final average, else the last epoch's)."""
        summary: dict[str, Any] = {"type": "summary", "updates": self.updates, "stopped_early": self.stopped,
                                   "reported": "online", "metrics": None}
        tail = [self.gaps.take()]  # the last epoch's record and checkpoint
        final = None
        if self.averager is not None:  # settling the average (SWAD: BatchNorm re-estimation too) is metered
            with self.meter.window("averaging") as energy:
                final = self.averager.finalize(batches=self._training_inputs())
                self.dist.average_buffers(final)  # re-estimated on each rank's batches
            energy, = summed_over_ranks(self.dist, energy)
            summary["averaging_energy"] = energy.to_dict()
            tail.append(energy)
        if final is not None:
            with self.meter.window("final_eval") as energy:
                summary["metrics"] = evaluate(final, self.eval_loader, self.device, numerics=self.numerics)[0]
            energy, = summed_over_ranks(self.dist, energy)
            summary.update(reported="averaged", final_eval_energy=energy.to_dict(), averager=self.averager.stats())
            tail.append(energy)
        tail[0], = summed_over_ranks(self.dist, tail[0])
        summary["other_energy"] = tail[0].to_dict()
        summary["run_energy"] = job_energy(self.records.lines, tail).to_dict()
        summary["kept"] = self.outputs.finish(final)
        self.records.append(summary)

    def _training_inputs(self) -> Iterator[list[torch.Tensor]]:
        """Training inputs after the last epoch, one list of per-environment batches per step, read only as
        far as a consumer asks: the stream continues through epochs `epochs`, `epochs + 1`, ... (as
        khanrc/swad's endless iterator does), so BatchNorm re-estimation gets all `update_bn_steps` batches
        even when an epoch has fewer steps. Stops only if an epoch yields nothing."""
        for epoch in itertools.count(self.cfg.epochs):
            empty = True
            for labelled, _, _ in self.stream.epoch(epoch):
                empty = False
                yield [x for x, _ in labelled]
            if empty:
                return

    # ------------------------------------------------------------------ records and checkpoints
    def _idle_baseline(self) -> Optional[dict]:
        """Idle power, measured once per job when energy.idle_baseline_s > 0 (outside the `other` gaps)."""
        seconds = self.cfg.energy.idle_baseline_s
        if not seconds:
            return None
        self.gaps.pause()
        idle = measure_idle_power(self.meter, seconds)
        self.gaps.resume()
        if self.dist.active:
            idle = idle_power(summed_over_ranks(self.dist, Reading.from_dict(idle["reading"]))[0])
        return idle

    def _epoch_record(self, epoch: int, outcome: EpochOutcome, metrics: dict, averaged: Optional[dict],
                      train_energy: Any, eval_energy: Any, eval_flops: float, other_energy: Any = None) -> dict:
        return {
            "type": "epoch", "epoch": epoch, "step": (epoch + 1) * self.steps, "updates": self.updates,
            "kind": str(outcome.kind), "fallback": outcome.fallback, "sampler": self.cfg.gradsamp.sampler,
            "metrics": metrics, "averaged_metrics": averaged, "update_stats": outcome.update_stats,
            "sampler_stats": outcome.sampler_stats or None,
            "averager": self.averager.stats() if self.averager else None,
            "energy": {"train": train_energy.to_dict(), "eval": eval_energy.to_dict(),
                       "other": other_energy.to_dict() if other_energy is not None else None,
                       **self._take_setup()},
            "flops": {"train": outcome.flops, "eval": eval_flops, "convention": self.flops.convention},
            "seconds": train_energy.seconds + eval_energy.seconds,
        }

    def _take_setup(self) -> dict:
        """{"setup": reading} for the first epoch record this process writes, else nothing."""
        setup, self._setup_energy = self._setup_energy, None
        return {"setup": setup} if setup else {}

    def _header(self) -> dict:
        data = self.data
        return {
            "type": "header", "format": FORMAT, "run_id": self.hash, "seed": self.seed, "config": to_dict(self.cfg),
            "resolved": self.exp.canonical(), "hparams": self.algorithm.hparams, "searched": self.exp.searched,
            "data": {"environments": data.suite.env_names, "train_envs": data.train_envs,
                     "test_envs": data.test_envs, "setting": data.setting, "steps_per_epoch": self.steps,
                     "batch_size": data.batch_size, "unlabelled_splits": self.stream.unlabelled_splits, **data.info},
            "versions": {"dagrad": __version__, "torch": torch.__version__, "numpy": np.__version__,
                         "python": platform.python_version()},
            "hardware": {"platform": platform.platform(), "processor": platform.processor(),
                         "torch_threads": torch.get_num_threads(), "device": str(self.device)},
            "compute": describe_compute(),
            "meter": self.meter.describe(),
            "numerics": self.numerics.describe(self.algorithm),
            "loading": {"num_workers": self.data.num_workers, "eval_batch_size": self.data.eval_batch_size,
                        "worker_start": START_METHOD if self.data.num_workers else None,
                        "pin_memory": self.device.type == "cuda", "eval_batches": len(self.eval_loader)},
            "idle_power": self.idle,
            **({"distributed": distributed_section(self.dist, self.meter, self.device)} if self.dist.active else {}),
        }

    def _checkpoint(self, next_epoch: int) -> None:
        if not self.dist.main:
            return
        save_checkpoint(self.out / CHECKPOINT_NAME, {
            "config_hash": self.hash, "epoch": next_epoch, "updates": self.updates, "stopped": self.stopped,
            "algorithm": self.algorithm.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in self.algorithm.optimizers().items()},
            "gradsamp": self.gradsamp.state_dict() if self.gradsamp else None,
            "averager": self.averager.state_dict() if self.averager else None,
            "rng": rng_state(), "records": self.records.lines, "kept": self.outputs.state_dict(),
        })

    def _restore(self) -> list[dict]:
        """Load the checkpoint into the model and state; returns its copy of the records."""
        payload = load_checkpoint(self.out / CHECKPOINT_NAME, self.hash)
        check_payload(payload, self.out / CHECKPOINT_NAME, self.cfg.epochs, self.algorithm)
        try:
            self.algorithm.load_state_dict(payload["algorithm"])
            for name, opt in self.algorithm.optimizers().items():
                opt.load_state_dict(payload["optimizers"][name])
            if self.gradsamp is not None:
                self.gradsamp.load_state_dict(payload["gradsamp"], self.algorithm)
            if self.averager is not None:
                self.averager.load_state_dict(payload["averager"])
            self.outputs.load_state_dict(payload.get("kept"))
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise CheckpointError(f"cannot resume from {self.out / CHECKPOINT_NAME}: it does not match this "
                                  f"run's model ({_state_problem(exc)})") from None
        set_rng_state(payload["rng"])
        self.start_epoch, self.updates, self.stopped = payload["epoch"], payload["updates"], payload["stopped"]
        return payload["records"]


def train(experiment: Experiment | ExperimentConfig, out_dir: str | Path, resume: bool = False,
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


def _state_problem(exc: Exception) -> str:
    """torch's refusal of a state dict as one line: its first problem ("size mismatch for x: ..."), whole
    words, and how many more there are."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("Error(s) in loading")] or lines or [type(exc).__name__]
    problems = [p.strip() for line in lines for p in line.split(". ") if p.strip()]
    first = problems[0].rstrip(".")
    if len(first) > 200:
        first = first[:200].rsplit(" ", 1)[0] + " ..."
    more = f"; and {len(problems) - 1} more" if len(problems) > 1 else ""
    return f"{first}{more}"


def _way_on(exc: StorageError, out: Path, exp: Experiment) -> StorageError:
    """A failed write once the run has written its records: the same command would find "already holds a
    run", so the message names the one that continues it (from its last checkpoint, or afresh without one)."""
    text = str(exc)
    if not (out / RECORDS_NAME).is_file() or "run again" not in text:
        return exc
    from dagrad.run.resuming import resume_command

    return StorageError(text.replace("run again", f"then continue with: {resume_command(out, exp.cfg.plugins)}"))
