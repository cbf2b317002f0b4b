"""One JSONL record file per run: a header line (config, versions, hardware, meter), one line per
epoch, and a summary line when the run ends. The file is rewritten atomically on every append, so a
crash leaves either the old or the new file, never half a line. Everything a table or plot shows is
computed from these files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable, Optional

from dagrad.atomic import write_text_atomic
from dagrad.errors import RecordsError
from dagrad.plain import plain

RECORDS_NAME = "records.jsonl"
FORMAT = 2  # 2: the header holds `resolved`, the canonical configuration with every option filled in


class RecordFile:
    """The records of one run, kept in memory and mirrored to disk atomically."""

    def __init__(self, path: str | Path, lines: Optional[list[dict]] = None):
        self.path = Path(path)
        self.lines: list[dict] = list(lines or [])
        #: called as observer(line, lines) after each line is written (the trackers): they see the stored values
        self.observers: list[Callable[[dict, list[dict]], None]] = []

    def append(self, record: dict) -> None:
        self.lines.append(plain(record))
        write_text_atomic(self.path, "".join(json.dumps(line, sort_keys=True) + "\n" for line in self.lines))
        for observe in self.observers:
            observe(self.lines[-1], self.lines)

    @classmethod
    def resume(cls, path: str | Path, next_epoch: int) -> "RecordFile":
        """The header and the epochs before `next_epoch` (later lines belong to work the checkpoint lost)."""
        lines = read_records(path)
        kept = [r for r in lines if r["type"] == "header" or (r["type"] == "epoch" and r["epoch"] < next_epoch)]
        if not kept or kept[0]["type"] != "header":
            raise RecordsError(f"{path}: no header line; the record file does not belong to a dagrad run")
        return cls(path, kept)


def read_records(path: str | Path) -> list[dict]:
    """All lines of a record file, with a clear error naming the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise RecordsError(f"no record file at {path}")
    lines = []
    for number, text in enumerate(path.read_text().splitlines(), 1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecordsError(f"{path}:{number}: not a JSON record ({exc.msg})") from None
        if not isinstance(line, dict) or "type" not in line:
            raise RecordsError(f"{path}:{number}: a record must be an object with a 'type'")
        lines.append(line)
    return lines


def find_runs(root: str | Path) -> list[Path]:
    """Every record file below `root` (a run directory or a sweep directory)."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(root.rglob(RECORDS_NAME))


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
