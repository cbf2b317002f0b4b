"""`dagrad data check NAME --root DIR`: is a real dataset on disk as dagrad expects it?

Per environment: images found against the published count (or "unknown"), zero-byte and unreadable
files (each opened with PIL's verify()), and the environments that are missing. If the dataset was
fetched by `dagrad data download`, the counts recorded then are compared too, and a kept archive is
re-hashed against the SHA-256 recorded at download. The CLI prints `report.format()` and exits 0 when
`report.ok`, 1 otherwise (2 for a bad name or option, as every DagradError)."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

from PIL import Image

from dagrad.datasets.folders import suite_from_tree
from dagrad.datasets.specs import DATASETS
from dagrad.utils.errors import ConfigError, DataError

RECORD_NAME = ".dagrad_download.json"


@dataclass
class EnvironmentCheck:
    name: str
    found: int
    expected: Optional[int]
    zero_byte: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    empty_classes: list[str] = field(default_factory=list)  # class folders without a single image
    missing_classes: list[str] = field(default_factory=list)  # classes other environments have, with no folder here

    @property
    def ok(self) -> bool:
        return (not self.zero_byte and not self.unreadable and not self.empty_classes
                and (self.expected is None or self.found == self.expected))


@dataclass
class CheckReport:
    dataset: str
    root: str
    environments: list[EnvironmentCheck] = field(default_factory=list)
    missing_environments: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # anything else that makes the data unusable
    notes: list[str] = field(default_factory=list)  # facts worth knowing that are not errors

    @property
    def ok(self) -> bool:
        return not self.missing_environments and not self.problems and all(e.ok for e in self.environments)

    def format(self, limit: int = 10) -> str:
        lines = [f"{self.dataset} at {self.root}: {'OK' if self.ok else 'PROBLEMS FOUND'}"]
        for env in self.environments:
            expected = "unknown" if env.expected is None else f"{env.expected:,}"
            flag = "ok" if env.ok else "!!"
            lines.append(f"  [{flag}] {env.name}: {env.found:,} images found, expected {expected}")
            for path in env.zero_byte[:limit]:
                lines.append(f"       zero-byte file: {path}")
            for path, reason in env.unreadable[:limit]:
                lines.append(f"       unreadable file: {path} ({reason})")
            for path in env.empty_classes[:limit]:
                lines.append(f"       empty class folder: {path} (no images; skipped when training)")
            if env.missing_classes:
                lines.append(f"       no folder for class(es) found in other environments: "
                             f"{', '.join(env.missing_classes[:limit])}"
                             + (f" and {len(env.missing_classes) - limit} more" if len(env.missing_classes) > limit
                                else ""))
            hidden = (max(0, len(env.zero_byte) - limit) + max(0, len(env.unreadable) - limit)
                      + max(0, len(env.empty_classes) - limit))
            if hidden:
                lines.append(f"       ... and {hidden} more bad files")
        for name in self.missing_environments:
            lines.append(f"  [!!] {name}: environment missing")
        lines += [f"  problem: {p}" for p in self.problems]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def verify_image(path: str) -> Optional[str]:
    """None if PIL can parse the file, else the reason it cannot."""
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for broken files; all mean "unreadable"
        return f"{type(exc).__name__}: {exc}"
    return None


def check(name: str, root: str | Path, options: Optional[dict] = None, verify_images: bool = True) -> CheckReport:
    """Inspect dataset `name` under data root `root` (see the module docstring)."""
    registered = DATASETS.get(name)
    entry = registered.load()
    if entry.layout == "embedded":
        raise ConfigError(f"{name} is embedded in dagrad (built from data in the package); there is nothing on disk "
                          f"to check")
    if entry.checker is not None:
        return entry.check(name, root, registered.resolve(options, "data.options"))
    root = Path(root).expanduser()
    report = CheckReport(name, str(root))
    cfg = SimpleNamespace(name=name, root=str(root), image_size=None,
                          options=registered.resolve(options, "data.options"))
    directory = root / entry.directory
    with warnings.catch_warnings():  # the report lists empty class folders itself
        warnings.filterwarnings("ignore", message=".*skipping empty class folder")
        suite = _suite(name, entry, cfg, directory, report)
    if suite is None:
        return report
    _inspect(suite, entry, directory, report, verify_images)
    _compare_with_download(directory, report)
    _integrity_note(entry, report)
    return report


def _suite(name: str, entry, cfg, directory: Path, report: CheckReport):
    """The dataset as training would read it, or None with the problem in the report."""
    if entry.layout == "domainbed":
        present = [e for e in entry.environments if (directory / e).is_dir()]
        report.missing_environments = [e for e in entry.environments if e not in present]
        if not present:
            report.problems.append(f"nothing found at {directory}; expected layout {entry.layout_text()}")
            return None
        try:
            return suite_from_tree(name, directory, present, cfg, use_cache=False)
        except DataError as exc:
            report.problems.append(str(exc))
            return None
    try:
        suite = entry.build(cfg)
    except DataError as exc:
        report.problems.append(str(exc))
        return None
    report.missing_environments = [e for e in entry.environments if e not in suite.env_names]
    return suite


def _inspect(suite, entry, directory: Path, report: CheckReport, verify_images: bool) -> None:
    """Per environment: counts, zero-byte and unreadable files, empty class folders, missing classes."""
    empty = suite.notes.get("empty_class_folders", {})
    missing_classes = suite.notes.get("missing_classes", {})
    for env in suite.environments:
        result = EnvironmentCheck(env.name, len(env), entry.counts.get(env.name))
        result.empty_classes = [str(directory / env.name / c) for c in empty.get(env.name, [])]
        result.missing_classes = list(missing_classes.get(env.name, []))
        for k in range(len(env)):
            path = env.describe(k)
            try:
                size = os.stat(path).st_size
            except OSError as exc:
                result.unreadable.append((path, exc.strerror or str(exc)))
                continue
            if size == 0:
                result.zero_byte.append(path)
            elif verify_images:
                reason = verify_image(path)
                if reason:
                    result.unreadable.append((path, reason))
        report.environments.append(result)
    if entry.num_classes and suite.num_classes != entry.num_classes:
        report.problems.append(f"{suite.num_classes} classes found, {entry.num_classes} expected")
    if entry.counts_source:
        report.notes.append(f"expected counts: {entry.counts_source}")
    for key, value in suite.notes.items():
        if key in ("duplicates", "classes_without_images"):
            report.notes.append(f"{key}: {value}")


def _compare_with_download(directory: Path, report: CheckReport) -> None:
    """Counts and archive hash recorded by `dagrad data download`, if it made this copy."""
    record_path = directory / RECORD_NAME
    if not record_path.is_file():
        return
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError) as exc:
        report.problems.append(f"{record_path} is unreadable ({exc})")
        return
    found = {e.name: e.found for e in report.environments}
    for env, count in record.get("counts", {}).items():
        if env in found and found[env] != count:
            report.problems.append(f"{env}: {found[env]:,} images now, {count:,} when downloaded")
    for archive in record.get("archives", []):
        path = Path(archive.get("path", ""))
        if path.is_file():
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            if digest.hexdigest() != archive.get("sha256"):
                report.problems.append(f"{path} changed since download (SHA-256 differs from {record_path.name})")
    report.notes.append(f"downloaded by dagrad ({record.get('downloaded_at', '?')}); counts compared")


def _integrity_note(entry, report: CheckReport) -> None:
    """Say plainly when nothing published lets dagrad verify the data (e.g. DomainNet: no checksum, no
    per-domain counts), so an OK is not read as more than it is."""
    unknown = [e.name for e in report.environments if e.expected is None]
    if not unknown or (entry.download is None and not entry.counts):  # bring-your-own data: nothing published
        return
    checksum = entry.download is not None and any(r.sha256 for r in entry.download.remotes)
    downloaded = any(n.startswith("downloaded by dagrad") for n in report.notes)
    what = "no published image count" + ("" if checksum else ", and its source publishes no checksum")
    since = ("; only changes since `dagrad data download` are detected (the counts and archive hashes it recorded)"
             if downloaded else "; only unreadable and empty files are detected")
    report.notes.append(f"integrity cannot be verified for {', '.join(unknown)}: {what}{since}")
