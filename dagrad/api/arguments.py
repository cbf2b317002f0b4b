"""The API's arguments checked before use: a wrong type is a DagradError naming the parameter and what it
accepts (never a TypeError from deep inside), worded with the API's names, not the CLI's flags."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from numbers import Real
from pathlib import Path
from typing import Any, Optional, Sequence

from dagrad.utils.errors import ConfigError, RecordsError


def _kind(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def path(value: Any, name: str, optional: bool = False) -> Optional[Path]:
    """A folder or file path given as a str or a Path (None when `optional`)."""
    if value is None and optional:
        return None
    if isinstance(value, (str, Path)) and str(value):
        return Path(value)
    raise ConfigError(f"{name}: expected a path (a str or a pathlib.Path), got {_kind(value)}")


def run_folder(value: Optional[Path], name: str = "out=") -> Optional[Path]:
    """A run folder as given, or resolved where it has no name of its own (`.`, `..`, `dir/..`), so that
    moving the attempt aside (restart) and naming it in messages work; the file system root is refused
    (`name` leads the message: `out=` for the API, `--out ` for the command line)."""
    if value is None or value.name not in ("", ".."):
        return value
    resolved = value.expanduser().resolve()
    if not resolved.name:
        raise ConfigError(f"{name}{value}: the file system root cannot be a run folder; name a folder for the run")
    return resolved


def runs_source(value: Any, name: str = "runs") -> Any:
    """A folder, or a list of folders, record files or runs; every folder or file given must exist (the
    same rule for load_runs and report)."""
    if isinstance(value, (str, Path)):
        path(value, name)
        return value
    if not isinstance(value, Iterable) or isinstance(value, (bytes, Mapping)):
        raise ConfigError(f"{name}: expected a folder (a str or a pathlib.Path) or a list of folders, record files "
                          f"or runs, got {_kind(value)}")
    items = list(value)
    for i, item in enumerate(items):
        if isinstance(item, (str, Path)):
            if not Path(item).exists():
                raise RecordsError(f"{name}[{i}]: no folder or record file at {item}")
        elif not hasattr(item, "records") and type(item).__name__ != "Run":
            raise ConfigError(f"{name}[{i}]: expected a folder, a record file or a run, got {_kind(item)}")
    return items


def names(value: Any, name: str) -> Optional[list[str]]:
    """None, a name, or a list of names."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"{name}: expected a name or a list of names, got {_kind(value)}")


def level(value: Any, name: str) -> float:
    """A test level strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < float(value) < 1 or math.isnan(value):
        shown = repr(value) if isinstance(value, (Real, str)) else _kind(value)
        raise ConfigError(f"{name}: the test level must be a number strictly between 0 and 1, got {shown}")
    return float(value)


def options(value: Any, name: str) -> Optional[dict]:
    """None or a mapping of option names to values."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{name}: expected a dict of option names to values, got {_kind(value)}")
    return dict(value)


def plugin_list(value: Any, name: str = "plugins") -> Sequence[str]:
    """A module name or .py path, or a list of them."""
    if isinstance(value, (str, Path)):
        return [str(value)]
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, Path)) for v in value):
        return [str(v) for v in value]
    raise ConfigError(f"{name}: expected a module name or .py path, or a list of them, got {_kind(value)}")


def choice(value: Any, allowed: Iterable[str], name: str) -> str:
    """One of `allowed` (the API's wording: the parameter's name, not the CLI's flag)."""
    allowed = list(allowed)
    if not isinstance(value, str) or value not in allowed:
        shown = repr(value) if isinstance(value, str) else _kind(value)
        raise ConfigError(f"{name}: {shown} is unknown; choose one of: {', '.join(allowed)}")
    return value


#: the CLI's words in messages the engine shares with `dagrad train`, as `dagrad.train` spells them
_API_WORDS = (("pass --resume to continue it, --restart to move it aside and start afresh, or choose another --out",
               "pass resume=True to continue it, restart=True to move it aside and start afresh, or choose "
               "another out="),
              ("(start the run without --resume)", "(start the run without resume=True)"))


def in_api_words(exc: Exception) -> Exception:
    """`exc` (a DagradError) with the CLI flags it names put as `dagrad.train`'s parameters."""
    text = str(exc)
    for cli, api in _API_WORDS:
        text = text.replace(cli, api)
    return exc if text == str(exc) else type(exc)(text)
