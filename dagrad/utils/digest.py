"""A file's SHA-256, read in blocks: how downloads and kept models prove their bytes are the ones recorded."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_of(path: str | Path) -> str:
    """The hex SHA-256 of the file at `path`, read 1 MiB at a time (a model or an archive never sits in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
