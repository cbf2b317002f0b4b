"""Fashion-MNIST's files: `dagrad data download` (the publisher's four .gz files over https, checked
against the MD5s the publisher lists) and `dagrad data check` (headers, counts, per-class histogram).

The publisher lists MD5s of its .gz files. A copy recompressed by someone else (Debian's
`dataset-fashion-mnist` recompresses them) or stored uncompressed cannot be checked against them; the
check says so plainly and verifies what can be verified: the decompressed headers, the image and label
counts (60,000 + 10,000) and the per-class histogram (6,000 and 1,000 per class)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np

from dagrad.utils.atomic import current_umask, write_text_atomic
from dagrad.datasets import fashion
from dagrad.datasets.check import RECORD_NAME, CheckReport, EnvironmentCheck
from dagrad.utils.errors import DataError

#: the publisher's repository serves its files over https (its S3 website, listed in its README, is http only)
URL = "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"
ORIGIN = "Xiao et al., 'Fashion-MNIST', 2017 (github.com/zalandoresearch/fashion-mnist, README's MD5 table)"
#: the publisher's MD5s of its .gz files
MD5 = {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
       "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
       "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
       "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}
COUNTS = {"train": 60_000, "test": 10_000}
PER_CLASS = {"train": 6_000, "test": 1_000}


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check(name: str, root: str | Path, options: Optional[dict] = None) -> CheckReport:
    """The files a Fashion-MNIST dataset reads: counts, per-class histogram and, where possible, MD5s.
    A malformed, truncated or miscounted file raises a DataError (one line, exit 2)."""
    try:
        directory = fashion.locate(root)
    except DataError as exc:
        report = CheckReport(name, str(root))
        report.problems.append(str(exc))
        return report
    report = CheckReport(name, str(directory))
    for split in fashion.FILES:
        _, labels = fashion.read_split(directory, split)
        report.environments.append(EnvironmentCheck(split, len(labels), COUNTS[split]))
        histogram = np.bincount(labels, minlength=len(fashion.CLASSES))
        wrong = {c: int(n) for c, n in enumerate(histogram) if n != PER_CLASS[split]}
        if wrong:
            detail = ", ".join(f"class {c}: {n:,}" for c, n in wrong.items())
            report.problems.append(f"{split}: per-class counts differ from {PER_CLASS[split]:,} each ({detail})")
    if not report.problems:
        report.notes.append("per-class histogram: " + ", ".join(f"{s} {PER_CLASS[s]:,} in each of the 10 classes"
                                                                for s in fashion.FILES))
    report.notes.append(f"expected counts: {ORIGIN}")
    report.notes += _md5_notes(directory, report)
    names = _environments(name, root, options)
    if names:
        total = sum(e.found for e in report.environments)
        sizes = sorted({len(range(i, total, len(names))) for i in range(len(names))}, reverse=True)
        report.notes.append(f"{name} deals these {total:,} images into {len(names)} environments "
                            f"({', '.join(names)}) of {' or '.join(f'{n:,}' for n in sizes)} images")
    return report


def _environments(name: str, root: str | Path, options: Optional[dict]) -> list[str]:
    """The environments a dealt benchmark builds from the files (none for fashion_mnist's own splits)."""
    from types import SimpleNamespace

    from dagrad.datasets.specs import dataset_spec

    spec = dataset_spec(name)
    if spec.environment_names is None or options is None:
        return []
    return list(spec.environments_for(SimpleNamespace(name=name, root=str(root), options=options)) or [])


def _md5_notes(directory: Path, report: CheckReport) -> list[str]:
    """Which files match the publisher's MD5s, and plainly which cannot be checked against them."""
    matching, unverifiable, plain = [], [], []
    for stem in (s for pair in fashion.FILES.values() for s in pair):
        path = fashion.file_path(directory, stem)
        if path.suffix != ".gz":
            plain.append(path.name)
        elif md5_of(path) == MD5[path.name]:
            matching.append(path.name)
        else:
            unverifiable.append(path.name)
    record = _record(directory)
    if record is not None:
        for item in record.get("files", []):
            path = directory / item.get("file", "")
            if path.is_file() and md5_of(path) != item.get("md5"):
                report.problems.append(f"{path} changed since `dagrad data download` (its MD5 differs from "
                                       f"{RECORD_NAME})")
    notes = []
    if matching:
        notes.append(f"MD5 matches the publisher's for {', '.join(matching)}")
    if unverifiable:
        notes.append(f"{', '.join(unverifiable)}: MD5 differs from the publisher's table, so these files cannot be "
                     f"checked against the publisher's MD5s (a recompressed copy, such as Debian's dataset-fashion-mnist, "
                     f"has other MD5s); "
                     f"their decompressed headers, counts and per-class histogram were checked instead")
    if plain:
        notes.append(f"{', '.join(plain)}: uncompressed, so they cannot be checked against the publisher's MD5s "
                     f"(those are of the .gz files); their headers, counts and per-class histogram were checked")
    return notes


def _record(directory: Path) -> Optional[dict]:
    path = directory / RECORD_NAME
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is unreadable ({exc}); delete it and download again") from None


def download(name: str, root: str | Path, progress: bool = True, base_url: Optional[str] = None) -> Path:
    """The publisher's four files in `<root>/fashion_mnist/`, each checked against its MD5 and read back
    (headers and counts) before anything is moved into place; returns that folder."""
    from dagrad.datasets.download import fetch

    root = Path(root).expanduser().resolve()
    target = root / fashion.DIRECTORY
    if (target / RECORD_NAME).is_file():
        return target
    if target.exists():
        raise DataError(f"{target} already exists but was not downloaded by dagrad; check it with "
                        f"`dagrad data check {name} --root {root}` or move it away and download again")
    root.mkdir(parents=True, exist_ok=True)
    base = base_url or os.environ.get("DAGRAD_MIRROR") or URL
    staging = Path(tempfile.mkdtemp(prefix=f".dagrad-staging-{name}-", dir=root))
    try:
        files = []
        for filename, md5 in MD5.items():
            url = f"{base.rstrip('/')}/{filename}"
            path = fetch(url, staging / filename, progress)
            got = md5_of(path)
            if got != md5:
                raise DataError(f"{filename}: MD5 {got} differs from the publisher's {md5} ({url}); nothing was kept, "
                                f"run the command again")
            files.append({"file": filename, "url": url, "md5": got, "bytes": path.stat().st_size})
        counts = {split: len(fashion.read_split(staging, split)[1]) for split in fashion.FILES}
        wrong = {s: n for s, n in counts.items() if n != COUNTS[s]}
        if wrong:
            raise DataError(f"{name}: the downloaded files hold {wrong} images, expected {COUNTS}; nothing was kept")
        record = {"dataset": name, "origin": ORIGIN, "files": files, "counts": counts, "verified": "md5",
                  "downloaded_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        write_text_atomic(staging / RECORD_NAME, json.dumps(record, indent=2) + "\n")
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp made it private
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
