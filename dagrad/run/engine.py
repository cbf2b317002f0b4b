"""The epoch loop of one run (dagrad.run.training.train_run holds the run's folder around it). It knows the
Algorithm contract and nothing of any particular algorithm; GradSamp, weight averaging (SWAD) and energy
metering plug in from outside.

Each epoch is either trained (steps_per_epoch updates) or, when GradSamp's schedule says so, sampled.
Then every split is evaluated, one record is appended and a checkpoint written, both atomically, so an
interrupted run resumes to the same result (on CPU, with a fixed seed).

The step loop never waits for the device: batches come pinned and are copied asynchronously, the
statistics `update` returns stay tensors and are summed on the device, and they are read once, when
the epoch's record is written. Everything between the metered phases (startup, record writes,
checkpoints) is metered as `other` (dagrad.energy.ledger), so a record's phases add up to the job; one-off
warm-up (thread pools, first allocations, kernel caches, evaluation workers) sits in a `setup` window before
the first epoch (dagrad.run.warmup), and every window records the conditions it ran under.

The run's parts are built from its Experiment by dagrad.run.parts, its header and epoch lines are written
by dagrad.run.header, its checkpoint is dagrad.run.state's."""

from __future__ import annotations

import contextlib
import itertools
import weakref
from pathlib import Path
from typing import Any, Iterator, Optional

import torch

from dagrad.config.experiment import Experiment, resolve
from dagrad.config.schema import ExperimentConfig
from dagrad.datasets.loading import batches_on, refuse_worker_bootstrap, to_device
from dagrad.energy.ledger import idle_power, job_energy, measure_idle_power
from dagrad.energy.ranks import summed_over_ranks
from dagrad.energy.reading import Reading
from dagrad.gradsamp.ranks import settle_draw
from dagrad.models.hook import RunOutputs
from dagrad.records.files import RECORDS_NAME, RecordFile
from dagrad.records.metrics import env_mean
from dagrad.run import distributed
from dagrad.run.checkpoint import CHECKPOINT_NAME, save_checkpoint
from dagrad.run.epochs import SCHEDULED, EpochKind, EpochOutcome, StepSums
from dagrad.run.evaluation import evaluate
from dagrad.run.header import epoch_record, run_header
from dagrad.run.parts import build_parts
from dagrad.run.progress import RunProgress
from dagrad.run.state import restore_state, state_payload
from dagrad.run.warmup import warm_up
from dagrad.tracking import Trackers
from dagrad.utils.errors import ConfigError
from dagrad.utils.seeding import seed_everything, seed_hash


class Trainer:
    """Builds everything a run needs (before writing anything), then trains epoch by epoch."""

    rank = 0  # this process's rank under multi-process training: trackers write on rank 0 only

    def __init__(self, experiment: Experiment | ExperimentConfig, out_dir: str | Path, resume: bool = False,
                 progress: bool | str | RunProgress = True):
        refuse_worker_bootstrap()
        exp = experiment if isinstance(experiment, Experiment) else resolve(experiment)
        self.dist = distributed.current()  # one process, or this rank of a torchrun job (dagrad.run.distributed)
        self.rank = self.dist.rank
        self.exp, self.cfg, self.out = exp, exp.cfg, Path(out_dir)
        self.progress = RunProgress.of(progress if self.dist.main else False)
        self.seed = exp.seed
        seed_everything(self.seed)
        self.parts = parts = build_parts(exp, self.seed, self.dist)
        self.device, self.meter, self.numerics, self.data = parts.device, parts.meter, parts.numerics, parts.data
        self.algorithm, self.steps, self.stream = parts.algorithm, parts.steps, parts.stream
        self.eval_loader, self.gradsamp, self.averager, self.flops = (parts.eval_loader, parts.gradsamp,
                                                                      parts.averager, parts.flops)
        self.gaps = parts.gaps
        self._meter_closer = weakref.finalize(self, self.meter.close)  # a constructor that fails closes it too
        self.hash = exp.run_id
        self.outputs = RunOutputs(self)  # kept models and per-example predictions (dagrad.models)
        self.start_epoch, self.updates, self.stopped = 0, 0, False
        self._setup_energy: Optional[dict] = None  # this process's setup window, until an epoch records it
        self.records = self._open_records(resume)
        self.dist.prepare(self.algorithm)  # rank 0's model everywhere; gradients averaged before each step
        self.trackers = Trackers(self.cfg.tracking, self.out, self.rank)  # packages checked; nothing written yet

    def _open_records(self, resume: bool) -> RecordFile:
        """The record file: resumed to the checkpoint's epoch, or new (refusing a folder that holds a run)."""
        path = self.out / RECORDS_NAME
        if resume:
            saved = self._restore()
            records = RecordFile.resume(path, self.start_epoch, saved) if self.dist.main else None
        elif path.exists():
            raise ConfigError(f"{self.out} already holds a run; pass --resume to continue it, --restart to move it "
                              f"aside and start afresh, or choose another --out")
        else:
            records = RecordFile(path)
        if self.dist.active:  # rank 0's records on every rank; the others never write them
            records = RecordFile(path, self.dist.broadcast_object(records.lines if self.dist.main else None),
                                 write=self.dist.main)
        return records

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
        self.progress.start(self.out, f"{self.exp.algorithm.name} on {self.exp.dataset.name}", self.cfg.epochs,
                            self.start_epoch, self.data.test_envs, self.data.train_envs)
        if not self.records.lines:
            self.idle = self._idle_baseline()
            self.records.append(run_header(self.exp, self.parts, self.seed, self.idle, self.dist))
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
                train_energy, eval_energy, other_energy = summed_over_ranks(self.dist, train_energy, eval_energy, other_energy)
                outcome.flops, eval_flops = self.dist.total(outcome.flops, eval_flops)
                if self.dist.check_every_epoch:
                    self.dist.check_same_model(self.algorithm, f"after epoch {epoch}")
            energy = {"train": train_energy, "eval": eval_energy, "other": other_energy}
            self.records.append(epoch_record(self.exp, self.parts, epoch, self.updates, outcome, metrics, averaged,
                                             energy, eval_flops, self._take_setup()))
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
        seconds = self.exp.energy.idle_baseline_s
        if not seconds:
            return None
        self.gaps.pause()
        idle = measure_idle_power(self.meter, seconds)
        self.gaps.resume()
        if self.dist.active:
            idle = idle_power(summed_over_ranks(self.dist, Reading.from_dict(idle["reading"]))[0])
        return idle

    def _take_setup(self) -> Optional[dict]:
        """The setup window's reading for the first epoch record this process writes, else None."""
        setup, self._setup_energy = self._setup_energy, None
        return setup

    def _checkpoint(self, next_epoch: int) -> None:
        if not self.dist.main:
            return
        save_checkpoint(self.out / CHECKPOINT_NAME, state_payload(
            self.parts, self.hash, next_epoch, self.updates, self.stopped, self.records.lines,
            self.outputs.state_dict()))

    def _restore(self) -> list[dict]:
        """Load the checkpoint into the model and state; returns its copy of the records."""
        payload = restore_state(self.out / CHECKPOINT_NAME, self.parts, self.hash, self.cfg.epochs, self.outputs)
        self.start_epoch, self.updates, self.stopped = payload["epoch"], payload["updates"], payload["stopped"]
        return payload["records"]
