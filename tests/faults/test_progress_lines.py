"""What a run prints: its folder at the start, one plain line per epoch in a log file, bars only on a
terminal, and --quiet keeping the lines while dropping the bars."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import sys
import termios
import threading

import pytest

from dagrad.records.files import read_records
from dagrad.run.progress import RunProgress, epoch_line
from helpers.faultinject import TINY

LINE = re.compile(r"^epoch (\d+) \((\d+) of 3\) (train|sampled|skipped|rejected -> (train|keep)): train \d+\.\d s, eval \d+\.\d s, "
                  r"energy \d+\.\d J \(estimated:cpu-time\), OOD acc \d+\.\d %, val acc \d+\.\d %$")
ARGS = [*TINY, "epochs=3", "gradsamp.sampler=tensor", "gradsamp.schedule_options.start=2",
        "gradsamp.schedule_options.every=2"]


def _train(tmp_path, monkeypatch, *extra, stderr) -> int:
    """`dagrad train` in-process with sys.stderr replaced by `stderr` (a log file or a terminal)."""
    from dagrad.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stderr", stderr)
    return main(["train", "--out", "run", *ARGS, *extra])


def test_a_log_file_gets_one_plain_line_per_epoch(tmp_path, monkeypatch):
    with open(tmp_path / "log.txt", "w") as log:
        assert _train(tmp_path, monkeypatch, stderr=log) == 0
    text = (tmp_path / "log.txt").read_text()
    assert "\r" not in text and "\x1b" not in text
    lines = [x for x in text.splitlines() if not x.startswith("dagrad: warning:")]
    assert lines[0] == "run run: erm on rotated_digits, 3 epochs (0 to 2)"
    assert [LINE.match(x).group(1, 2) for x in lines[1:]] == [("0", "1"), ("1", "2"), ("2", "3")], lines
    assert lines[3].startswith("epoch 2 (3 of 3) sampled:")
    records = [r for r in read_records(tmp_path / "run" / "records.jsonl") if r["type"] == "epoch"]
    assert [(r["epoch"], r["kind"]) for r in records] == [(0, "train"), (1, "train"), (2, "sampled")]  # as the lines


def test_the_skip_control_records_and_prints_skipped(tmp_path, monkeypatch):
    with open(tmp_path / "log.txt", "w") as log:
        assert _train(tmp_path, monkeypatch, "gradsamp.sampler=skip", stderr=log) == 0
    lines = [x for x in (tmp_path / "log.txt").read_text().splitlines() if LINE.match(x)]
    assert [LINE.match(x).group(1, 3) for x in lines] == [("0", "train"), ("1", "train"), ("2", "skipped")]
    records = [r for r in read_records(tmp_path / "run" / "records.jsonl") if r["type"] == "epoch"]
    assert [r["kind"] for r in records] == ["train", "train", "skipped"]
    assert records[2]["updates"] == records[1]["updates"]


@pytest.mark.parametrize("quiet", [False, True], ids=["bars", "quiet"])
def test_a_terminal_gets_bars_unless_quiet_and_always_the_lines(tmp_path, monkeypatch, quiet):
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    chunks: list[bytes] = []

    def drain():
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    with open(terminal, "w", closefd=True) as tty:
        assert tty.isatty()
        assert _train(tmp_path, monkeypatch, *(["--quiet"] if quiet else []), stderr=tty) == 0
    reader.join(timeout=10)
    os.close(controller)
    text = b"".join(chunks).decode()
    epoch_lines = [x for x in text.replace("\r", "\n").splitlines() if LINE.match(x.strip())]
    assert len(epoch_lines) == 3, text
    assert ("epochs:" in text) == (not quiet), text  # tqdm's bar


def test_the_api_without_progress_prints_nothing(tiny_config, tmp_path, capsys):
    from dagrad.run.training import train_run

    train_run(tiny_config("epochs=1"), tmp_path / "run", progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and "epoch" not in captured.err


def test_epoch_line_with_unreadable_energy_and_a_fallback():
    record = {"epoch": 4, "kind": "rejected", "fallback": "keep",
              "energy": {"train": {"seconds": 1.25, "joules": None, "sources": ["measured:nvml"]},
                         "eval": {"seconds": 0.5, "joules": 2.0, "sources": ["estimated:cpu-time"]}}}
    assert epoch_line(record, 10, float("nan"), 0.5) == (
        "epoch 4 (5 of 10) rejected -> keep: train 1.2 s, eval 0.5 s, energy 2.0 J (estimated:cpu-time, measured:nvml, "
        "partly unreadable), OOD acc n/a, val acc 50.0 %")
    stream = io.StringIO()
    progress = RunProgress(lines=True, bars=True, stream=stream)
    assert not progress.bars  # a StringIO is no terminal
