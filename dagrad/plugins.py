"""User code that registers algorithms or datasets: imported before a config's names are checked.

An entry is a dotted module name (`mypkg.my_algorithm`) or a path to a .py file. Because the list
lives in the config, the record header carries it and sweep workers import it again themselves."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path

from dagrad.errors import ConfigError


def import_plugins(entries: list[str]) -> None:
    for i, entry in enumerate(entries):
        try:
            if entry.endswith(".py"):
                _import_file(Path(entry).expanduser().resolve())
            else:
                importlib.import_module(entry)
        except ConfigError:
            raise
        except FileNotFoundError:
            raise ConfigError(f"plugins[{i}]: no file {entry!r}") from None
        except Exception as exc:  # noqa: BLE001 - any failure in user code is reported as its input
            raise ConfigError(f"plugins[{i}]: importing {entry!r} failed: {type(exc).__name__}: {exc}") from None


def _import_file(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(path)
    name = f"dagrad_plugin_{path.stem}_{hashlib.md5(str(path).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
