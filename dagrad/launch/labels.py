"""Readable names for a sweep's job folders: `OUT/by-label/<label> -> ../<config hash>`.

A job's folder keeps its configuration hash (its identity: the same configuration is the same job, wherever
it sits in a grid); `by-label/` adds one relative symbolic link per job, named after what a person would
call it: algorithm, GradSamp setting, test environments and trial seed, plus the dataset, hparams seed and
any extra axis or variant where the sweep has more than one of them (`erm-tensor-te5-s0`). Each link is
made under a temporary name and renamed over the old one, so a reader never sees a half-made link; links of
jobs no longer in the sweep are removed (links only: no job folder is touched)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

from dagrad.launch.grid import GridPoint

LABELS_FOLDER = "by-label"
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


def job_labels(points: Sequence[GridPoint], ids: Sequence[str]) -> list[str]:
    """One distinct label per job (a label two jobs would share gets each job's hash prefix)."""
    varies = {name: len({getter(p) for p in points}) > 1 for name, getter in (
        ("dataset", lambda p: p.dataset), ("hparams", lambda p: p.hparams_seed))}
    extra_keys = sorted({k for p in points for k, _ in (*p.variants, *p.extra)
                         if len({dict((*q.variants, *q.extra)).get(k) for q in points}) > 1})
    labels = []
    for point in points:
        parts = [point.dataset] if varies["dataset"] else []
        parts += [point.algorithm, point.setting]
        if point.test_envs is not None:
            parts.append("te" + "_".join(map(str, point.test_envs)))
        if varies["hparams"]:
            parts.append(f"h{point.hparams_seed}")
        parts.append(f"s{point.trial_seed}")
        own = dict((*point.variants, *point.extra))
        parts += [f"{key.rsplit('.', 1)[-1]}={own[key]}" for key in extra_keys if key in own]
        labels.append(_UNSAFE.sub("_", "-".join(str(p) for p in parts)).strip("._") or "job")
    counts = {label: labels.count(label) for label in labels}
    return [f"{label}-{job_id[:8]}" if counts[label] > 1 else label for label, job_id in zip(labels, ids)]


def link_labels(out: Path, points: Sequence[GridPoint], ids: Sequence[str]) -> dict[str, str]:
    """Make `out/by-label/<label> -> ../<id>` for every job; returns label -> id. The links are a
    convenience: where they cannot be made (no symbolic links on this file system, a full disk) the sweep
    goes on without them and {} is returned (the hashed folders are all a sweep needs)."""
    folder = Path(out) / LABELS_FOLDER
    wanted = dict(zip(job_labels(points, ids), ids))
    tmp = None
    try:
        folder.mkdir(exist_ok=True)
        for label, job_id in wanted.items():
            link, target = folder / label, os.path.join("..", job_id)
            if link.is_symlink() and os.readlink(link) == target:
                continue
            tmp = folder / f".{label}.{os.getpid()}.tmp"
            tmp.unlink(missing_ok=True)
            os.symlink(target, tmp)
            os.replace(tmp, link)  # atomic: the old link or the new one, never neither
            tmp = None
        for stale in folder.iterdir():
            if stale.is_symlink() and stale.name not in wanted:
                stale.unlink()
    except (OSError, NotImplementedError):
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        return {}
    return wanted
