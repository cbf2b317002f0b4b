"""Warnings as dagrad shows them, in the shell and in a notebook alike: one line each, each distinct one once.

The demo and sweeps build a meter per run, and imports that change warning filters reset Python's own
once-per-location memory, so the same warning would otherwise repeat; here its text is what counts."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from typing import Iterator

_SHOWN: set[str] = set()


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A `warnings.showwarning` replacement: `dagrad: warning: <text>`, once per distinct text per process.
    The other ranks of a multi-process (torchrun) job stay silent: rank 0 speaks for the job."""
    text = str(message)
    if os.environ.get("RANK", "0") not in ("", "0"):
        return
    if text not in _SHOWN:
        _SHOWN.add(text)
        print(f"dagrad: warning: {text}", file=file or sys.stderr)


@contextlib.contextmanager
def warnings_once() -> Iterator[None]:
    """Within the block every warning is shown (not only the first per location) through `show_warning`;
    the caller's filters and `showwarning` are restored afterwards."""
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show_warning
        yield
