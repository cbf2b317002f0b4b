"""Errors that reach the user as one clear line and exit code 2 (see cli.main)."""

from __future__ import annotations

import re

#: what torch's DataLoader makes of an exception raised in a worker process: it re-raises the same type
#: with the worker's whole traceback as the message (torch._utils.ExceptionWrapper.reraise)
_WORKER_WRAPPED = re.compile(r"^Caught \w+ in (?P<where>DataLoader worker process \d+)\.\nOriginal Traceback")


#: the longest message an error carries (a last guard: values are quoted cut short, see `clip`)
MAX_MESSAGE = 2000


class DagradError(Exception):
    """A problem with the user's input: the message says what was wrong and what is allowed."""

    exit_code = 2

    def __init__(self, message: object = "", *args: object):
        super().__init__(_one_line(message) if isinstance(message, str) else message, *args)


def _one_line(message: str) -> str:
    """A message re-raised by a DataLoader worker becomes the original one line again (the worker's
    traceback says nothing a user can act on)."""
    wrapped = _WORKER_WRAPPED.match(message)
    if not wrapped:
        return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE - 16] + " ... (cut short)"
    last = message.rstrip().splitlines()[-1]
    original = last.split(": ", 1)[1] if ": " in last and last.split(": ", 1)[0].endswith("Error") else last
    return f"{original} (in {wrapped['where']})"


class ConfigError(DagradError):
    """A bad configuration key, type or value."""


class UnknownNameError(ConfigError):
    """A component name no registry holds (a plugin that was not imported may be the one to register it)."""


class DataError(DagradError):
    """A dataset that is missing, malformed or unreadable."""


class CheckpointError(DagradError):
    """A checkpoint or record file that cannot be used to resume."""


class RecordsError(DagradError):
    """A record file that is missing, malformed or does not belong to a dagrad run."""


class StorageError(DagradError):
    """A file or folder that could not be written (disk full, read-only, no permission)."""


class BusyError(DagradError):
    """A run folder locked by another live process."""


class LaunchError(DagradError):
    """A cluster that refused to take a sweep's jobs (sbatch's own message says why)."""


def clip(value: object, limit: int = 80) -> str:
    """`repr(value)` cut to about `limit` characters, for quoting a user's value in a one-line message
    (a value can be megabytes long; the message stays short)."""
    text = repr(value) if not isinstance(value, (list, dict, tuple)) else _short_repr(value, limit)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _short_repr(value: object, limit: int) -> str:
    """repr of a container without building all of it: reprlib with generous item counts."""
    import reprlib

    short = reprlib.Repr()
    short.maxlist = short.maxtuple = short.maxdict = 12
    short.maxstring = short.maxother = limit
    short.maxlevel = 4
    return short.repr(value)
