"""One job on several processes, one GPU each: `torchrun --nproc_per_node=N -m dagrad train ...`, or a Slurm
task with several tasks per node (launch/slurm_task.py). Without torchrun's variables (WORLD_SIZE <= 1)
everything here is a no-op and a run is exactly the single-process run.

How N processes train the run one process would (up to floating-point order):
- Identical starts: parameters and buffers are broadcast from rank 0 at start (after any resume).
- Batches: every rank draws the same global batch from (seed, environment, epoch) and takes its slice
  (datasets.bundle.EpochBatchSampler).
- Gradients: algorithms call backward and step their own optimizers (DANN has two, and a gradient
  penalty through create_graph), so nothing is wrapped in DistributedDataParallel. A step pre-hook on
  every optimizer averages its gradients over the ranks just before the step; a gradient missing on
  some ranks counts as zero there, one missing on every rank stays missing (the optimizer skips it, as
  it would in one process). A plugin algorithm works unchanged.
- Buffers (BatchNorm statistics) are averaged over the ranks at the end of every trained epoch and after
  SWAD re-estimates them, so every rank evaluates and samples the same model.
- GradSamp: every rank draws the same theta_t (generators seeded by (run seed, epoch)). After each
  sampled epoch the ranks compare the epoch's decision and parameter checksums; should they differ (device
  generators that disagree), rank 0's draw, decision and optimizer state are broadcast and the record
  says so (dagrad.gradsamp.ranks).
- Evaluation: every split is sharded over the ranks by whole batches (no padding, no duplicates) and the
  float64 totals are summed, so accuracy is exactly the single-process accuracy; SWAD's loss valley and
  early stop read those totals, so every rank stops at the same epoch.
- Energy: each rank meters its own GPU, RAPL is read once per node, and each window is summed over the
  ranks (dagrad.energy.ranks); the header says how many GPUs and nodes were metered
  (dagrad.records.distributed_section).
- Output: rank 0 alone writes records, checkpoints and trackers, and holds the folder's lock
  (dagrad.run.folder.shared_run_folder).

This module holds only the job's place (rank, world) and its collectives: sums, broadcasts, gathers, the
gradient and buffer averages, and the checks that every rank holds the same model. What the job does with
them lives with its owner (the modules named above).
- Dropout and augmentation draw from per-epoch seeds that include the rank.

$DAGRAD_DIST_TIMEOUT_S bounds every collective (default 1800 s), so a rank that died or hangs fails the
job instead of stalling it; $DAGRAD_DIST_CHECK=1 compares parameter checksums after every epoch."""

from __future__ import annotations

import contextlib
import datetime
import os
from typing import Any, Iterator, Optional

import torch
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from dagrad.utils.errors import DagradError

TIMEOUT_ENV = "DAGRAD_DIST_TIMEOUT_S"
BACKEND_ENV = "DAGRAD_DIST_BACKEND"
CHECK_ENV = "DAGRAD_DIST_CHECK"
DEFAULT_TIMEOUT_S = 1800.0


class RanksDisagree(RuntimeError):
    """The ranks of one job hold different models or took different decisions (a bug, never expected)."""


class Distributed:
    """This process's place in a job of `world` processes; `Distributed()` is the single process."""

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0, backend: Optional[str] = None):
        self.rank, self.world, self.local_rank, self.backend = rank, world, local_rank, backend
        self.device = torch.device("cuda", local_rank) if backend == "nccl" else torch.device("cpu")
        self.check_every_epoch = os.environ.get(CHECK_ENV, "") not in ("", "0")

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def shard(self) -> Optional[tuple[int, int]]:
        """(rank, world) for the training batches, or None in one process."""
        return (self.rank, self.world) if self.active else None

    @property
    def reads_node(self) -> bool:
        """Whether this process reads its node's CPU package counters (the node's first process)."""
        return self.local_rank == 0

    def seed_parts(self, *parts: Any) -> tuple:
        """Seed parts, with the rank added when there are several (the single-process seeds stay as they were)."""
        return (*parts, "rank", self.rank) if self.active else parts

    # ------------------------------------------------------------------ collectives (no-ops in one process)
    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """`tensor` summed over the ranks, in place."""
        if self.active:
            moved = tensor.to(self.device)
            torch.distributed.all_reduce(moved)
            if moved is not tensor:
                tensor.copy_(moved)
        return tensor

    def same_everywhere(self, values: torch.Tensor) -> bool:
        """Whether every rank holds exactly these values (one MIN and one MAX all-reduce)."""
        if not self.active:
            return True
        low, high = values.to(self.device, torch.float64).clone(), values.to(self.device, torch.float64).clone()
        torch.distributed.all_reduce(low, torch.distributed.ReduceOp.MIN)
        torch.distributed.all_reduce(high, torch.distributed.ReduceOp.MAX)
        return bool(torch.equal(low, high))

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank."""
        if not self.active:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0, device=self.device)
        return box[0]

    def gather_objects(self, obj: Any) -> list:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.active:
            return [obj]
        out: list = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    # ------------------------------------------------------------------ the model
    def prepare(self, algorithm: nn.Module) -> None:
        """Start every rank from rank 0's model and average gradients before every optimizer step."""
        if not self.active:
            return
        self.broadcast_tensors(state_tensors(algorithm))
        for optimizer in algorithm.optimizers().values():
            optimizer.register_step_pre_hook(self._average_gradients)

    def broadcast_tensors(self, tensors: list[torch.Tensor]) -> None:
        """Rank 0's values of `tensors` on every rank (one broadcast per device and dtype)."""
        for group in _groups(tensors):
            flat = _flatten_dense_tensors(group).to(self.device)
            torch.distributed.broadcast(flat, src=0)
            with torch.no_grad():
                for t, value in zip(group, _unflatten_dense_tensors(flat, group)):
                    t.copy_(value)

    def average_buffers(self, module: Optional[nn.Module]) -> None:
        """Floating buffers (BatchNorm statistics) averaged over the ranks; integer ones are equal already."""
        if not self.active or module is None:
            return
        self._average_in_place([b for b in module.buffers() if b.is_floating_point()])

    def _average_in_place(self, tensors: list[torch.Tensor]) -> None:
        """Each tensor replaced by its mean over the ranks, in flat groups (one all-reduce per group)."""
        for group in _groups(tensors):
            flat = _flatten_dense_tensors(group).to(self.device)
            torch.distributed.all_reduce(flat)
            flat /= self.world
            with torch.no_grad():
                for t, value in zip(group, _unflatten_dense_tensors(flat, group)):
                    t.copy_(value)

    def _average_gradients(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if any(p.grad is not None and p.grad.is_sparse for p in params):
            raise DagradError("multi-GPU training averages dense gradients only; this optimizer has a sparse one")
        present = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=self.device)
        torch.distributed.all_reduce(present)
        stepped = [p for p, n in zip(params, present.tolist()) if n > 0]
        grads = []
        for p in stepped:
            if p.grad is None:  # missing here, present elsewhere: zero here
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
        self._average_in_place(grads)

    def checksum(self, module: nn.Module) -> torch.Tensor:
        """Two float64 sums per parameter and buffer (plain, and position-weighted), on the module's device."""
        sums = []
        with torch.no_grad():
            for t in state_tensors(module):
                x = t.detach().reshape(-1).to(torch.float64)
                weights = torch.linspace(1.0, 2.0, x.numel(), dtype=torch.float64, device=x.device)
                sums += [x.sum(), (x * weights).sum()]
        if not sums:
            return torch.zeros(0, dtype=torch.float64)
        return torch.nan_to_num(torch.stack(sums), nan=1.5e300)  # NaN everywhere is the same model too

    def check_same_model(self, module: nn.Module, when: str) -> None:
        """Raise RanksDisagree naming `when` unless every rank holds exactly the same model."""
        if self.active and not self.same_everywhere(self.checksum(module)):
            raise RanksDisagree(f"the ranks' models differ {when}")

    def check_stopped_together(self, epoch: int, updates: int, stopped: bool) -> None:
        """At the end of training: every rank ran the same epochs and updates, and stopped (or not) alike."""
        if self.active and not self.same_everywhere(torch.tensor([epoch, updates, float(stopped)])):
            raise RanksDisagree(f"the ranks ended training differently (this rank: epoch {epoch}, {updates} "
                                f"updates, stopped early: {stopped})")

    # ------------------------------------------------------------------ figures of every rank
    def mean_stats(self, stats: dict[str, float]) -> dict[str, float]:
        """Update statistics averaged over the ranks (each rank's are means over its slice); counts of
        skipped examples are added."""
        if not self.active:
            return stats
        everyone = self.gather_objects(stats)
        names = sorted({k for s in everyone for k in s})
        out = {}
        for name in names:
            values = [s[name] for s in everyone if name in s]
            out[name] = sum(values) if name == "skipped_examples" else sum(values) / len(values)
        return out

    def total(self, *numbers: float) -> tuple[float, ...]:
        """Numbers (FLOPs) summed over the ranks."""
        if not self.active:
            return numbers
        return tuple(sum(column) for column in zip(*self.gather_objects(list(numbers))))

def state_tensors(module: nn.Module) -> list[torch.Tensor]:
    """Every parameter and buffer, in a fixed order (the same on every rank)."""
    return [t for _, t in module.named_parameters()] + [t for _, t in module.named_buffers()]


def _groups(tensors: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """Tensors grouped by device and dtype (each group is flattened into one collective)."""
    groups: dict[tuple, list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((str(t.device), t.dtype), []).append(t)
    return list(groups.values())


_CURRENT = Distributed()


def current() -> Distributed:
    """This process's Distributed (single-process unless a session is open)."""
    return _CURRENT


def requested() -> bool:
    """Whether torchrun (or a multi-task Slurm task) started this process as one of several."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def is_main_process() -> bool:
    """Rank 0, or a single process (decided from the environment, before any process group exists)."""
    return os.environ.get("RANK", "0") in ("", "0")


@contextlib.contextmanager
def session(device: Optional[str] = None) -> Iterator[Distributed]:
    """The process group for a job started by torchrun (a no-op otherwise): the backend is NCCL for a CUDA
    run, gloo otherwise ($DAGRAD_DIST_BACKEND overrides), every collective bounded by $DAGRAD_DIST_TIMEOUT_S.
    A group that is already open (a sweep worker's) is used as it is and left open."""
    global _CURRENT
    if not requested() or _CURRENT.active:
        yield _CURRENT
        return
    if not torch.distributed.is_available():
        raise DagradError("WORLD_SIZE > 1 but this torch has no torch.distributed; run one process per job")
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and (device or "auto") in ("auto", "cuda")
    backend = os.environ.get(BACKEND_ENV) or ("nccl" if cuda else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local_rank)  # the run's `cuda` device is this rank's GPU
    try:
        timeout = datetime.timedelta(seconds=float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_S))
    except ValueError:
        raise DagradError(f"{TIMEOUT_ENV}: expected seconds, got {os.environ[TIMEOUT_ENV]!r}") from None
    torch.distributed.init_process_group(backend, timeout=timeout, rank=rank, world_size=world)
    _CURRENT = Distributed(rank, world, local_rank, backend)
    try:
        yield _CURRENT
    finally:
        _CURRENT = Distributed()
        torch.distributed.destroy_process_group()
