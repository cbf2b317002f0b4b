"""Helpers that write tiny image trees for the dataset tests (real PNG/JPEG files made with PIL)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from PIL import Image


def write_image(path: Path, seed: int = 0, size: int = 12) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256)
    Image.new("RGB", (size, size), colour).save(path, format="JPEG" if path.suffix == ".jpg" else "PNG")
    return path


def write_tree(root: Path, envs: dict[str, dict[str, int]], ext: str = ".png") -> Path:
    """root/<env>/<class>/img<k><ext>, with the number of images per class given."""
    seed = 0
    for env, classes in envs.items():
        for cls, n in classes.items():
            for k in range(n):
                seed += 1
                write_image(root / env / cls / f"img{k}{ext}", seed)
    return root


def age(root: Path, seconds: float = 3600) -> None:
    """Set every directory's mtime `seconds` into the past (a tree that was last changed long ago)."""
    then = time.time() - seconds
    for path, _, _ in os.walk(root):
        os.utime(path, (then, then))
