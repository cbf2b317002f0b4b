"""DataLoader construction: worker processes started safely, pinned batches for CUDA, and one loader (one
worker pool) over every evaluation split.

Workers start through a `forkserver` (where the platform has one), not by forking the training process.
By the time the first batch is asked for, the training process has threads (counted at every fork of a
tiny run: 3 to 13 OS threads, never 1): tqdm's monitor thread (the epoch bar exists before the first
batch), torch's OpenMP pool, the multiprocessing queue-feeder threads of the loaders already started
(one per worker), and on a GPU CUDA's driver threads and the pin-memory threads. Forking a
multi-threaded process can deadlock the child, and Python >= 3.12 warns about it on every fork ("This
process is multi-threaded, use of fork() may lead to deadlocks in the child"); dagrad's command shows
every warning once, so it printed that one. The fork server is a
single-threaded process started once per training process, which preloads torch and the modules the
dataset needs, so workers are forked from it cheaply. As with Python >= 3.14's default start method, a
script that calls `dagrad.train` with `data.num_workers > 0` must guard its entry point with
`if __name__ == "__main__":`.
"""

from __future__ import annotations

import multiprocessing
from typing import Any, Callable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

#: the start method of data workers ("fork" where the platform has no fork server)
START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "fork"
_ALWAYS_PRELOADED = ("torch", "dagrad.datasets.bundle")
#: what image datasets' workers need, preloaded when the server starts before the dataset exists
_EARLY_PRELOADED = ("dagrad.datasets.folders", "torchvision.transforms", "PIL.Image")


def refuse_worker_bootstrap() -> None:
    """A data worker starting through the fork server runs the main script again (as `__mp_main__`); a
    script without a main guard would start training inside every worker. Say so, in one line."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        from dagrad.utils.errors import ConfigError

        raise ConfigError("training was started while a data worker process was starting up: the script that "
                          "calls dagrad.train must guard its entry point with `if __name__ == \"__main__\":` "
                          "(data workers start through a fork server)")


def _modules_of(dataset: Any, depth: int = 0) -> set[str]:
    """The modules defining a dataset and what it holds (environment, transform), for the fork server to
    import once instead of every worker importing them."""
    found = {type(dataset).__module__}
    if depth < 3:
        for name in ("env", "transform", "dataset"):
            if hasattr(dataset, name) and getattr(dataset, name) is not None:
                found |= _modules_of(getattr(dataset, name), depth + 1)
        for child in getattr(dataset, "datasets", None) or getattr(dataset, "transforms", None) or []:
            found |= _modules_of(child, depth + 1)
    return {m for m in found if m and not m.startswith(("builtins", "__main__", "__mp_main__"))}


def start_fork_server(modules: Sequence[str] = ()) -> None:
    """Start the fork server now, preloading torch, dagrad's dataset code and `modules`, so its imports (a
    few seconds) run beside the training process's own setup (indexing the data, building the model,
    initialising CUDA) instead of before the first batch. Later loaders reuse it."""
    if START_METHOD != "forkserver":
        return
    from multiprocessing import forkserver

    ctx = multiprocessing.get_context(START_METHOD)
    ctx.set_forkserver_preload(sorted(set(_ALWAYS_PRELOADED) | set(_EARLY_PRELOADED) | set(modules)))
    forkserver.ensure_running()


def worker_context(dataset: Dataset) -> Any:
    """The multiprocessing context of data workers; the fork server is started now (preloading what the
    dataset needs) so that its start overlaps the model's construction rather than the first step."""
    ctx = multiprocessing.get_context(START_METHOD)
    if START_METHOD == "forkserver":
        from multiprocessing import forkserver

        ctx.set_forkserver_preload(sorted(set(_ALWAYS_PRELOADED) | _modules_of(dataset)))  # used at its start
        forkserver.ensure_running()
    return ctx


def make_loader(dataset: Dataset, workers: int, collate_fn: Callable, pin_memory: bool = False,
                **kwargs: Any) -> DataLoader:
    """A DataLoader whose workers (if any) are persistent and started through `worker_context`; batches
    are pinned when they go to a CUDA device, so the copy can be asynchronous."""
    extra: dict[str, Any] = {}
    if workers > 0:
        extra = {"persistent_workers": True, "multiprocessing_context": worker_context(dataset)}
    return DataLoader(dataset, num_workers=workers, collate_fn=collate_fn, pin_memory=pin_memory, **extra, **kwargs)


class EvalLoader:
    """Every evaluation split through one loader, so one worker pool decodes all of them in parallel.

    Batches never mix splits: the batch sampler cuts each split into batches of `batch_size` (the last one
    may be shorter), split after split, and `owners[k]` is the position in `names` of batch k's split
    (the loader keeps the sampler's order). An example is addressed as (split position, index). With
    workers, the next pass is started as soon as one ends, so its first batches are decoded while the
    model trains (as DomainBed's ever-running loaders do).

    With a `shard` (a dagrad.run.distributed.Distributed over several processes) this process takes every
    world-th batch, starting at its rank: no example is seen twice and none is padded in, and each batch
    is the one a single process would evaluate. `combine` then sums the evaluation's per-split totals
    over the processes."""

    def __init__(self, splits: dict[str, Dataset], batch_size: int,
                 build: Callable[[Dataset, list[list[tuple[int, int]]]], DataLoader], shard: Any = None):
        self.names = list(splits)
        self.sizes = [len(d) for d in splits.values()]
        self.batches: list[list[tuple[int, int]]] = []
        self.owners: list[int] = []
        self.shard = shard if shard is not None and shard.active else None
        rank, world = (self.shard.rank, self.shard.world) if self.shard else (0, 1)
        position = 0
        for k, n in enumerate(self.sizes):
            for lo in range(0, n, batch_size):
                if position % world == rank:
                    self.batches.append([(k, i) for i in range(lo, min(lo + batch_size, n))])
                    self.owners.append(k)
                position += 1
        self.loader = build(Splits(list(splits.values())), self.batches)
        self._next: Any = None  # a pass already started (its workers prefetching), or None

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        """(split position, batch) pairs in order."""
        batches, self._next = (self._next if self._next is not None else iter(self.loader)), None
        for k, batch in enumerate(batches):
            yield self.owners[k], batch
        if self.loader.num_workers > 0 and self.batches:
            self._next = iter(self.loader)  # persistent workers start on the next pass now

    def start(self) -> int:
        """Start the workers on the next pass now (a no-op without workers or when one is started);
        returns how many workers decode it."""
        if self.loader.num_workers > 0 and self.batches and self._next is None:
            self._next = iter(self.loader)
        return self.loader.num_workers if self.batches else 0

    def __len__(self) -> int:
        return len(self.batches)

    def combine(self, totals: torch.Tensor) -> torch.Tensor:
        """Per-split totals of this process's batches -> totals over every process (exact float64 sums)."""
        return self.shard.sum_(totals) if self.shard is not None else totals


class Splits(Dataset):
    """Several datasets addressed by (which, index): one dataset for one loader, without a search per item."""

    def __init__(self, datasets: list[Dataset]):
        self.datasets = datasets

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    def __getitem__(self, address: tuple[int, int]) -> Any:
        which, index = address
        return self.datasets[which][index]


def to_device(x: torch.Tensor, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    """Copy a batch to `device`; asynchronous when it comes from pinned memory (CUDA). Images go to
    channels-last when asked (the layout tensor cores prefer for convolutions)."""
    if channels_last and x.dim() == 4:
        return x.to(device, non_blocking=True, memory_format=torch.channels_last)
    return x.to(device, non_blocking=True)


def batches_on(device: torch.device, pairs: Sequence[tuple[torch.Tensor, torch.Tensor]],
               channels_last: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Labelled minibatches moved to `device` (see `to_device`)."""
    return [(to_device(x, device, channels_last), y.to(device, non_blocking=True)) for x, y in pairs]


__all__ = ["EvalLoader", "START_METHOD", "batches_on", "make_loader", "refuse_worker_bootstrap",
           "start_fork_server", "to_device", "worker_context"]
