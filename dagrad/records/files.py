"""One JSONL record file per run: a header line (config, versions, hardware, meter), one line per
epoch, and a summary line when the run ends. The file is rewritten atomically on every append, so a
crash leaves either the old or the new file, never half a line. Everything a table or plot shows is
computed from these files."""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Callable, Iterable, Optional

from dagrad.utils.atomic import write_atomic, write_text_atomic
from dagrad.utils.errors import RecordsError
from dagrad.utils.plain import plain
from dagrad.records.schema import record_problem

RECORDS_NAME = "records.jsonl"
FORMAT = 2  # 2: the header holds `resolved`, the canonical configuration with every option filled in


class RecordFile:
    """The records of one run, kept in memory and mirrored to disk atomically."""

    def __init__(self, path: str | Path, lines: Optional[list[dict]] = None, write: bool = True):
        self.path = Path(path)
        self.lines: list[dict] = list(lines or [])
        self.write = write  # False: kept in memory only (the ranks > 0 of a multi-process run)
        #: called as observer(line, lines) after each line is written (the trackers): they see the stored values
        self.observers: list[Callable[[dict, list[dict]], None]] = []

    def append(self, record: dict) -> None:
        self.lines.append(plain(record))
        if not self.write:
            return
        write_text_atomic(self.path, "".join(json.dumps(line, sort_keys=True) + "\n" for line in self.lines))
        for observe in self.observers:
            observe(self.lines[-1], self.lines)

    @classmethod
    def resume(cls, path: str | Path, next_epoch: int, saved: Optional[list[dict]] = None) -> "RecordFile":
        """The header and the epochs before `next_epoch` (later lines belong to work the checkpoint lost).

        `saved` is the checkpoint's own copy of those lines. It is what the run really produced, so when the
        file on disk disagrees (cut short, edited, replaced) the records are rebuilt from it, the file's
        version is kept beside it and a warning says so: records and checkpoint always agree on the epoch."""
        path = Path(path)
        try:
            lines: Optional[list[dict]] = read_records(path) if path.exists() or saved is None else []
        except RecordsError:
            if saved is None:
                raise
            lines = None  # unreadable: rebuilt from the checkpoint below
        kept = None if lines is None else \
            [r for r in lines if r["type"] == "header" or (r["type"] == "epoch" and r.get("epoch", 0) < next_epoch)]
        if saved is not None:
            if kept is None or _text(kept) != _text(saved):
                _keep_disagreeing(path, kept, saved)
            elif lines and lines[-1]["type"] == "summary" and _text(lines[:-1]) == _text(saved):
                saved = [*saved, lines[-1]]  # a finished run: its summary line came after the last checkpoint
            kept = [dict(line) for line in saved]
        if not kept or kept[0]["type"] != "header":
            raise RecordsError(f"{path}: no header line; the record file does not belong to a dagrad run")
        return cls(path, kept)


def _text(lines: list[dict]) -> str:
    return "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines)


def _keep_disagreeing(path: Path, found: Optional[list[dict]], saved: list[dict]) -> None:
    """Warn that the file is rebuilt from the checkpoint; keep a copy of a file that is not simply cut short."""
    epochs = [r["epoch"] for r in found or [] if r["type"] == "epoch"]
    have = f"epochs {epochs[0]}-{epochs[-1]}" if epochs else "no epochs"
    if not path.exists():
        why = "is missing"
    elif found is not None and _text(found) == _text(saved[:len(found)]):
        why = f"is cut short (it holds {have})"
    else:
        copy = path.with_name(f"{path.name}.disagreed-{time.strftime('%Y%m%d-%H%M%S')}")
        data = path.read_bytes()
        write_atomic(copy, lambda f: f.write(data))
        why = f"{'is unreadable' if found is None else 'differs from the checkpoint'} (kept as {copy.name})"
    last = max((r["epoch"] for r in saved if r["type"] == "epoch"), default=None)
    upto = f"epochs 0-{last}" if last is not None else "no epochs yet"
    warnings.warn(f"{path} {why}; the checkpoint holds {upto}, so the records are rebuilt from it")


def read_records(path: str | Path) -> list[dict]:
    """All lines of a record file, with a clear error naming the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise RecordsError(f"no record file at {path}")
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RecordsError(f"{path}: not a UTF-8 text file (byte {exc.start}); not a dagrad record file") from None
    except OSError as exc:
        raise RecordsError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    lines = []
    for number, text in enumerate(content.splitlines(), 1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecordsError(f"{path}:{number}: not a JSON record ({exc.msg})") from None
        if not isinstance(line, dict) or "type" not in line:
            raise RecordsError(f"{path}:{number}: a record must be an object with a 'type'")
        problem = record_problem(line)
        if problem is not None:
            raise RecordsError(f"{path}:{number}: malformed {line['type']} record: {problem}")
        lines.append(line)
    return lines


def find_runs(root: str | Path) -> list[Path]:
    """Every record file below `root` (a run directory or a sweep directory). Symlinked folders are
    followed (each real folder read once, so a link loop ends, and named by its own path where the walk
    meets it too, as a sweep's by-label links lead to its job folders); a link that leads nowhere is named in a
    warning rather than skipped in silence."""
    root = Path(root)
    if root.is_file():
        return [root]
    found: dict[str, Path] = {}  # real folder -> its records, named by the path without links where one is met
    seen: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            if real in found and real == os.path.abspath(folder):  # the folder itself, met after a link to it
                found[real] = Path(folder) / RECORDS_NAME
            continue
        seen.add(real)
        dirs.sort()
        for name in dirs + files:
            path = Path(folder) / name
            if path.is_symlink() and not path.exists():
                warnings.warn(f"{path}: a symbolic link to {os.readlink(path)}, which does not exist; skipped")
        if RECORDS_NAME in files:
            found[real] = Path(folder) / RECORDS_NAME
    return sorted(found.values())


def split_run(lines: Iterable[dict]) -> tuple[dict, list[dict], Optional[dict]]:
    """(header, epoch records, summary or None)."""
    header, epochs, summary = {}, [], None
    for line in lines:
        if line["type"] == "header":
            header = line
        elif line["type"] == "epoch":
            epochs.append(line)
        elif line["type"] == "summary":
            summary = line
    return header, epochs, summary
