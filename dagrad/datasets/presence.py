"""Whether a dataset a config names is on disk, without reading an image: what a sweep's dry run checks so
that a missing download stops it before every job fails on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from dagrad.utils.errors import DagradError


def absence(data: Any, spec: Any) -> Optional[DagradError]:
    """The error a run of `data` (a DataConfig) would stop with because its files are not there, or None.
    Embedded datasets and a plugin's datasets (whose builder may write or fetch its own files) are taken as
    present."""
    from dagrad.datasets import DATASETS
    from dagrad.datasets.folders import data_root, missing

    layout = spec.layout
    if not DATASETS.get(data.name).builtin or layout == "embedded" or not (layout in ("domainbed", "folder") or layout.startswith(("dassl_", "wilds_"))):
        return None
    try:
        root = data_root(data)
    except DagradError as exc:
        return exc
    if layout == "folder":
        return None if root.is_dir() else missing(data.name, root, root, spec.layout_text())
    directory = root / spec.directory if spec.directory else root
    if not directory.is_dir():
        return missing(data.name, root, directory, spec.layout_text())
    if layout == "domainbed":
        absent = [e for e in spec.environments if not (Path(directory) / e).is_dir()]
        if absent:
            return missing(data.name, root, directory, spec.layout_text(), f"environment(s) {', '.join(absent)} missing")
    return None
