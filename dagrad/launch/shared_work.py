"""Work a cluster sweep does once, on the submitting host, before any task starts.

Every job of a folder-layout dataset (PACS, DomainNet, ...) starts by indexing the dataset's tree, and the
index is cached on disk (dagrad.datasets.index; $DAGRAD_CACHE_DIR or ~/.cache/dagrad). Building each
dataset's index here means hundreds of array tasks starting at once find it cached instead of all listing
DomainNet's 586k files on the shared file system at the same time. (The cache must be on a file system
the nodes share, as the home directory usually is; otherwise each node builds its own once.)"""

from __future__ import annotations

import json
import time
from typing import Callable, Sequence

from dagrad.launch.jobs import Job


def build_indexes(jobs: Sequence[Job], say: Callable[[str], None] = lambda text: None) -> list[str]:
    """Build (or confirm the cached) data of every distinct dataset configuration the jobs read from disk;
    returns the dataset names built. A dataset that cannot be read stops the submission with its error."""
    from dagrad.datasets.specs import build_suite, dataset_spec

    seen: dict[str, str] = {}
    for job in jobs:
        cfg = job.experiment.data_config()
        if dataset_spec(cfg.name).layout == "embedded":
            continue  # shipped with dagrad: nothing to index
        key = json.dumps([cfg.name, cfg.root, cfg.options], sort_keys=True, default=str)
        if key in seen:
            continue
        started = time.time()
        suite = build_suite(cfg)
        cached = (getattr(suite, "notes", None) or {}).get("index_from_cache")
        how = "from the cache" if cached else "indexed"
        seen[key] = cfg.name
        say(f"data {cfg.name} ({cfg.root}): {how} in {time.time() - started:.1f} s, shared by the tasks")
    return list(seen.values())
