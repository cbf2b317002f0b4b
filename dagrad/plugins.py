"""User code that registers algorithms, datasets or other components: imported before a config's names
are checked, and only with the user's consent on the command line.

An entry is a dotted module name (`mypkg.my_algorithm`) or a path to a .py file. A plugin runs code, and
config files travel (a shared sweep, an include, a downloaded example), so naming a plugin in a config
is not enough to import it: the user gives consent with `--plugin X` (which also adds X to the config)
or, for whatever the configs name, `--allow-plugins`. `PluginConsent` carries that consent explicitly
from the command line (or the API's `plugins=` keyword) to the place that imports; a config naming a
plugin without it stops with one line naming the plugin and the flag, before anything is imported.
Sweep workers are given the launcher's consent on their own command line (`worker_arguments`)."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from dagrad.utils.errors import ConfigError


def _key(entry: str) -> str:
    """What an entry means: the absolute file for a .py path, the module name otherwise."""
    return str(Path(entry).expanduser().resolve()) if entry.endswith(".py") else entry


@dataclass(frozen=True)
class PluginConsent:
    """Which plugins the user agreed to import: the ones named (`--plugin`), or every one (`--allow-plugins`)."""

    named: frozenset[str] = frozenset()
    allow_all: bool = False
    #: False for a dry run: consent is checked as for a real run, but nothing is imported
    imports: bool = True

    @classmethod
    def of(cls, named: Iterable[str] = (), allow_all: bool = False) -> "PluginConsent":
        return cls(frozenset(_key(e) for e in named), bool(allow_all))

    def permits(self, entry: str) -> bool:
        return self.allow_all or _key(entry) in self.named

    @property
    def may_import(self) -> bool:
        """Whether some plugin would be imported (so a name it registers may be unknown without it)."""
        return self.allow_all or bool(self.named)

    def checking_only(self) -> "PluginConsent":
        """The same consent for a dry run: checked, never acted on."""
        return PluginConsent(self.named, self.allow_all, imports=False)

    def worker_arguments(self) -> list[str]:
        """The same consent as command-line arguments (for `python -m dagrad.launch.worker`)."""
        if self.allow_all:
            return ["--allow-plugins"]
        return [arg for entry in sorted(self.named) for arg in ("--plugin", entry)]


NO_PLUGINS = PluginConsent()
ALL_PLUGINS = PluginConsent(allow_all=True)


def check_consent(entries: list[str], consent: PluginConsent) -> None:
    """A ConfigError naming the first plugin the user did not consent to; imports nothing."""
    for i, entry in enumerate(entries):
        if not consent.permits(entry):
            raise ConfigError(f"plugins[{i}]: the config names the plugin {entry!r}, which runs code; import it only "
                              f"if you trust it, with --plugin {entry} (or --allow-plugins for every plugin the "
                              f"config names)")


def import_plugins(entries: list[str], consent: PluginConsent = NO_PLUGINS) -> None:
    """Import every entry, after checking consent for all of them (a dry run's consent imports none)."""
    check_consent(entries, consent)
    if not consent.imports:
        return
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


def with_plugins(entries: list[str], more: Iterable[str]) -> list[str]:
    """`entries` and then those of `more` that are not already among them (the same file or module)."""
    out, seen = list(entries), {_key(e) for e in entries}
    for entry in more:
        if _key(entry) not in seen:
            out.append(entry)
            seen.add(_key(entry))
    return out


def add_consent_arguments(parser) -> None:
    """--plugin (repeatable) and --allow-plugins, for commands that read configs."""
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE",
                        help="import this module or .py file, which registers components (repeatable); "
                             "plugins run code, so none is imported without this flag")
    parser.add_argument("--allow-plugins", action="store_true",
                        help="import every plugin the config files name (they run code: trust them first)")


def consent_from(args) -> PluginConsent:
    """The consent given on a command line parsed with `add_consent_arguments`."""
    return PluginConsent.of(getattr(args, "plugin", []) or [], getattr(args, "allow_plugins", False))
