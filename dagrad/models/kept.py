"""Kept models: the trained weights a run keeps beside its records, and the manifest that names them.

A run folder holds `models/kept.json` (which model is where: `last`, `best`, `swad`, `epoch-N`) and one
weights-only file per distinct model (`models/epoch-N.pt`, `models/swad.pt`); `last` and `best` share a
file when they are the same epoch. Each file holds the algorithm's state_dict (tensors only) and plain
facts, is written atomically and read with `torch.load(weights_only=True)`; the manifest records its
SHA-256, so a file changed after the run wrote it is refused rather than silently used.

Crash safety: a new file is written before the checkpoint that refers to it, and a file no longer
referred to is deleted only after the next checkpoint is on disk. The checkpoint holds the manifest's
entries, so a run killed at any moment resumes with a manifest whose files all exist.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from dagrad.utils.atomic import write_atomic, write_text_atomic
from dagrad.run.checkpoint import check_plain
from dagrad.utils.errors import CheckpointError
from dagrad.records.metrics import env_mean
from dagrad.utils.digest import sha256_of

MODELS_DIR = "models"
MANIFEST_NAME = "kept.json"
FORMAT = 1
KIND = "dagrad-kept-model"


def host_copy(state: dict) -> dict:
    """The tensors copied to the host, a tensor that appears under several names (a featurizer that is also
    part of the network) copied once, so the file stores it once."""
    copies: dict[tuple, torch.Tensor] = {}
    out = {}
    for name, t in state.items():
        key = (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)
        if key not in copies:
            copies[key] = t.detach().to("cpu", copy=True)
        out[name] = copies[key]
    return out


def write_model_file(path: Path, run_id: str, which: str, epoch: Optional[int], state: dict) -> dict:
    """Write one weights-only model file atomically; returns its manifest entry (file, epoch, sha256, bytes)."""
    payload = {"format": FORMAT, "kind": KIND, "run_id": run_id, "which": which, "epoch": epoch,
               "state": host_copy(state)}
    check_plain(payload, "kept model")
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomic(path, lambda f: f.write(buffer.getbuffer()))
    return {"file": path.name, "epoch": epoch, "sha256": hashlib.sha256(buffer.getbuffer()).hexdigest(),
            "bytes": buffer.getbuffer().nbytes}


def read_model_file(path: Path, entry: dict) -> dict:
    """The state_dict of a kept model whose manifest entry is `entry`, or a CheckpointError in one line."""
    if not path.is_file():
        raise CheckpointError(f"cannot load the kept model: {path} is missing (the manifest names it; was the run "
                              f"folder copied only in part?)")
    if entry.get("sha256") and sha256_of(path) != entry["sha256"]:
        raise CheckpointError(f"refusing {path}: it is not the file the run wrote (its SHA-256 differs from the one "
                              f"in {MANIFEST_NAME}); nothing in it was run")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt zip, foreign pickle: both refused the same way
        why = "it holds objects other than tensors and plain data" \
            if zipfile.is_zipfile(path) and "weights only" in str(exc).lower() else "it is truncated or corrupted"
        raise CheckpointError(f"refusing {path}: not a dagrad kept model ({why}); nothing in it was run") from None
    if not isinstance(payload, dict) or payload.get("kind") != KIND or not isinstance(payload.get("state"), dict):
        raise CheckpointError(f"refusing {path}: not a dagrad kept model (no {KIND!r} payload)")
    return payload["state"]


def read_manifest(folder: Path) -> dict:
    """A run folder's `models/kept.json`, or a CheckpointError naming what is missing."""
    path = Path(folder) / MODELS_DIR / MANIFEST_NAME
    if not Path(folder).is_dir():
        raise CheckpointError(f"no run folder at {folder}")
    if not path.is_file():
        raise CheckpointError(f"{folder} keeps no models (no {MODELS_DIR}/{MANIFEST_NAME}); runs keep them from "
                              f"this dagrad version on, as checkpoints.keep says")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("models"), dict):
        raise CheckpointError(f"{path} is not a kept-models manifest (no 'models' mapping)")
    return manifest


def validation(metrics: dict, train_envs: list[int]) -> float:
    """Training-domain validation: the mean `out` accuracy of the training environments (DomainBed's)."""
    return env_mean(metrics, train_envs, "out")


class KeptModels:
    """The engine's hook: fed each epoch's metrics and model, it keeps what `checkpoints.keep` asks for."""

    def __init__(self, folder: Path, keep: list[str], run_id: str, facts: dict, train_envs: list[int],
                 write: bool = True):
        self.dir = Path(folder) / MODELS_DIR
        self.keep, self.run_id, self.facts, self.train_envs = set(keep), run_id, facts, list(train_envs)
        self.write = write and bool(self.keep)
        self.entries: dict[str, dict] = {}
        self.best_val = -math.inf

    # -- engine hook
    def after_epoch(self, epoch: int, metrics: dict, module: nn.Module) -> None:
        """Write this epoch's model if it is now `last`, `best` or kept as `epoch-N`."""
        if not self.write:
            return
        val = validation(metrics, self.train_envs)
        wanted = [w for w in ("last", "every") if w in self.keep]
        if "best" in self.keep and math.isfinite(val) and val > self.best_val:  # ties keep the earlier epoch
            wanted.append("best")
        if not wanted:
            return
        entry = write_model_file(self.dir / f"epoch-{epoch}.pt", self.run_id, "epoch", epoch, module.state_dict())
        entry["val_acc"] = val if math.isfinite(val) else None  # None: no training-domain `out` split scored
        for which in wanted:
            self.entries[f"epoch-{epoch}" if which == "every" else which] = dict(entry)
        if "best" in wanted:
            self.best_val = val

    def finish(self, averaged: Optional[nn.Module]) -> dict:
        """At the run's end: keep SWAD's average (when kept and present), settle the files; returns the
        entries for the summary line."""
        if self.write and averaged is not None and "swad" in self.keep:
            self.entries["swad"] = write_model_file(self.dir / "swad.pt", self.run_id, "swad", None,
                                                    averaged.state_dict())
        self.commit()
        return {which: f"{MODELS_DIR}/{e['file']}" for which, e in sorted(self.entries.items())}

    def state_dict(self) -> dict:
        return {"entries": json.loads(json.dumps(self.entries)), "best_val": self.best_val}

    def load_state_dict(self, state: Optional[dict]) -> None:
        """From a checkpoint (None: one written before models were kept): entries of later epochs are gone."""
        if isinstance(state, dict):
            self.entries = dict(state.get("entries") or {})
            self.best_val = float(state.get("best_val", -math.inf))
        self.commit()

    def commit(self) -> None:
        """Write the manifest, then delete model files nothing refers to (call after the checkpoint)."""
        if not self.write:
            return
        manifest = {"format": FORMAT, "run_id": self.run_id, "keep": sorted(self.keep), "model": self.facts,
                    "models": self.entries}
        write_text_atomic(self.dir / MANIFEST_NAME, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        used = {e["file"] for e in self.entries.values()} | {MANIFEST_NAME}
        for path in self.dir.iterdir():
            if path.name not in used and (path.suffix == ".pt" or path.name.endswith(".tmp")):
                path.unlink(missing_ok=True)
