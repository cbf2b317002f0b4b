"""Warnings as one `dagrad: warning: ...` line each, each distinct one once per command (the CLI, sweep
workers and the Python API share this: the demo and sweeps build a meter per run, and imports that change
warning filters reset Python's own once-per-location memory)."""

from __future__ import annotations

import sys
import warnings

_SHOWN: set[str] = set()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    text = str(message)
    if text not in _SHOWN:
        _SHOWN.add(text)
        print(f"dagrad: warning: {text}", file=file or sys.stderr)


def show_warnings_as_lines() -> None:
    """From now on, print each distinct warning once, as one line on stderr."""
    _SHOWN.clear()
    warnings.showwarning = _show_warning
