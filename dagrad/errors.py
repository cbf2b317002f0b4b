"""Errors that reach the user as one clear line and exit code 2 (see cli.main)."""

from __future__ import annotations


class DagradError(Exception):
    """A problem with the user's input: the message says what was wrong and what is allowed."""

    exit_code = 2


class ConfigError(DagradError):
    """A bad configuration key, type or value."""


class DataError(DagradError):
    """A dataset that is missing, malformed or unreadable."""


class CheckpointError(DagradError):
    """A checkpoint or record file that cannot be used to resume."""


class RecordsError(DagradError):
    """A record file that is missing, malformed or does not belong to a dagrad run."""
