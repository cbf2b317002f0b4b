"""One registry pattern for every extension point: algorithms, datasets, networks, GradSamp samplers and
schedules, averagers, energy backends, launchers and CLI commands.

A `Registry` maps a name to an `Entry`: what to build (an object, or a lazy "module:attribute" string),
a one-line description, the component's own options (`Option`: default, type, valid range, and for
hyperparameters a random-search distribution) and any facts the extension point needs (`info`).
Built-ins and plugins register the same way; installed packages may also advertise entries through
the entry-point group `dagrad.<plural>` (e.g. `dagrad.launchers`). `dagrad list`, `--help` and config
validation read the registries, so a choice is never written out twice.

Every kind is built the same way: `entry.resolve(given, key)` checks the options once (a `Resolved` holds
the entry and the result, as a run's Experiment does), and `entry.build(options, **context)` builds the
component from them and what the run provides (a registry's `builder` says how its kind calls the target).

This module sits on the bottom floor: it imports nothing from dagrad but the errors.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, Mapping, Optional, TypeVar, Union

from dagrad.utils.errors import ConfigError, UnknownNameError, clip

T = TypeVar("T")

_NUMBER = (int, float)


@dataclass(frozen=True)
class Option:
    """One setting of a component: its default, type and valid range, declared once.

    `type` is bool, int, float, str, list or dict (`item` types a list's elements). Numbers may be bounded
    by `low`/`high` (closed unless `low_open`/`high_open`); `choices` restricts to listed values;
    `nullable` allows null. `search`, for hyperparameters, draws a value from a numpy RandomState for
    DomainBed-style random search (None: the default is kept in every draw).
    """

    default: Any
    type: type = float
    doc: str = ""
    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    nullable: bool = False
    item: Optional[type] = None
    search: Optional[Callable[[Any], Any]] = None

    def allowed(self) -> str:
        """What values are allowed, in words (for error messages and `dagrad list`)."""
        if self.choices:
            text = "one of: " + ", ".join(map(str, self.choices))
        elif self.type is bool:
            text = "true or false"
        elif self.type in (int, float):
            noun = "an integer" if self.type is int else "a finite number"
            text = noun + _range_words(self.low, self.high, self.low_open, self.high_open)
        elif self.type is list and self.item in (int, float):
            noun = "integer" if self.item is int else "number"
            text = f"a list of {noun}s" + _range_words(self.low, self.high, self.low_open, self.high_open)
        elif self.type is list:
            text = "a list" + (f" of {_type_words(self.item)}s" if self.item else "")
        elif self.type is dict:
            text = "a mapping"
        else:
            text = _type_words(self.type)
        return text + (" or null" if self.nullable else "")

    def check(self, value: Any, key: str) -> Any:
        """`value` coerced to the option's type, or a ConfigError naming `key` and what is allowed."""
        if value is None:
            if self.nullable:
                return None
            raise ConfigError(f"{key}: must not be null; allowed: {self.allowed()}")
        if self.type is list and self.item is not None:
            if isinstance(value, (int, float, str)) and not isinstance(value, bool):
                value = [value]  # `test_envs=3` means [3]
            items = _coerce(value, list, key, self)
            return [self._scalar(v, self.item, f"{key}[{i}]") for i, v in enumerate(items)]
        return self._scalar(value, self.type, key)

    def _scalar(self, value: Any, typ: type, key: str) -> Any:
        value = _coerce(value, typ, key, self)
        if self.choices and value not in self.choices:
            raise ConfigError(f"{key}: {clip(value)} is not allowed; choose one of: {', '.join(map(str, self.choices))}")
        if typ in (int, float) and not _in_range(value, self):
            raise ConfigError(f"{key}: {clip(value)} is out of range; allowed: {self.allowed()}")
        return value


def _type_words(typ: Optional[type]) -> str:
    return {bool: "true or false", int: "integer", float: "number", str: "string", list: "list",
            dict: "mapping"}.get(typ, getattr(typ, "__name__", "value"))


def _range_words(low, high, low_open, high_open) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high:g}"
    return ""


def _in_range(value: float, opt: Option) -> bool:
    if opt.low is not None and (value < opt.low or (opt.low_open and value == opt.low)):
        return False
    if opt.high is not None and (value > opt.high or (opt.high_open and value == opt.high)):
        return False
    return True


def _coerce(value: Any, typ: type, key: str, opt: Option) -> Any:
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {clip(value)}")
    if typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {clip(value)}; allowed: {opt.allowed()}")
    if typ is float:
        number = to_float(value, key)
        if not math.isfinite(number):
            raise ConfigError(f"{key}: expected a finite number, got {clip(value)}; allowed: {opt.allowed()}")
        return number
    if typ is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {clip(value)}")
    if typ is list:
        if isinstance(value, (list, tuple)):
            return list(value)
        raise ConfigError(f"{key}: expected a list, got {clip(value)}")
    if typ is dict:
        if isinstance(value, Mapping):
            return dict(value)
        raise ConfigError(f"{key}: expected a mapping, got {clip(value)}")
    return value


def to_float(value: Any, key: str) -> float:
    """A float from a number or a numeric string (PyYAML reads `1e-4` as a string)."""
    if isinstance(value, _NUMBER) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ConfigError(f"{key}: expected a number, got {clip(value)}")


Options = Union[Mapping[str, Option], Callable[..., Mapping[str, Option]]]
#: how one kind of component is built: (entry, resolved options, **context) -> the component
Builder = Callable[..., Any]


@dataclass
class Entry(Generic[T]):
    """A registered component. `target` is the thing itself or a lazy "module:attribute" string."""

    name: str
    target: Any
    description: str = ""
    options: Options = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    origin: str = "dagrad"
    builder: Optional[Builder] = None  # its registry's: how its kind is built (see `build`)

    @property
    def builtin(self) -> bool:
        """Whether dagrad itself registered the entry (else a plugin or an installed package did)."""
        return self.origin == "dagrad" or self.origin.startswith("dagrad.")

    def load(self) -> T:
        """The component (importing its module the first time, for lazy entries)."""
        self.target = load_target(self.target)
        return self.target

    def build(self, options: Mapping[str, Any], **context: Any) -> Any:
        """The component, from its resolved `options` and what the run provides (`context`: the module an
        averager wraps, the device a meter reads, ...): the one way every kind is built. The registry's
        builder says how its kind calls the target; without one, the target is called with the context and
        the options as keywords. `options` must come from `resolve`: nothing is checked again here."""
        if self.builder is not None:
            return self.builder(self, dict(options), **context)
        return self.load()(**context, **dict(options))

    def defaults(self, **context: Any) -> dict[str, Any]:
        """Each option's default, by name."""
        return {k: o.default for k, o in self.option_table(**context).items()}

    def option_table(self, **context: Any) -> dict[str, Option]:
        """The options; a callable table is given the context (e.g. the dataset, for hyperparameters)."""
        table = self.options(**context) if callable(self.options) else self.options
        return dict(table)

    def resolve(self, given: Optional[Mapping[str, Any]], key: str, **context: Any) -> dict[str, Any]:
        """Defaults with the `given` values on top, each checked; unknown names are a ConfigError."""
        table = self.option_table(**context)
        given = dict(given or {})
        unknown = sorted(set(given) - set(table))
        if unknown:
            allowed = ", ".join(table) or "none"
            raise ConfigError(f"{key}.{unknown[0]}: not an option of {self.name}; allowed: {allowed}")
        return {name: opt.check(given[name], f"{key}.{name}") if name in given else opt.default
                for name, opt in table.items()}


@dataclass(frozen=True)
class Resolved:
    """A component resolved once: its entry, its checked options, and the build keywords its name fixes (a
    family member's: `timm:resnet18` -> model=resnet18). What an Experiment holds and a run builds from."""

    entry: Entry
    options: dict
    fixed: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.entry.name

    def build(self, **context: Any) -> Any:
        """The component for this run (`context`: what the run provides, see `Entry.build`)."""
        return self.entry.build(self.options, **self.fixed, **context)


class Registry(Generic[T]):
    """Names -> entries for one extension point (see the module docstring).

    `kind` names one component in messages ("sampler"), `key` is the config key that chooses it
    ("gradsamp.sampler"), `options_key` the one that holds its options ("gradsamp.sampler_options"; "{name}"
    stands for the entry's name), `builtins` is a module whose import registers the built-in entries,
    `builder` how an entry of this kind is built from its options (see `Entry.build`).
    """

    def __init__(self, kind: str, key: str, plural: Optional[str] = None, builtins: Optional[str] = None,
                 options_key: Optional[str] = None, builder: Optional[Builder] = None):
        self.kind, self.key = kind, key
        self.plural = plural or kind + "s"
        self.options_key = options_key or key.rsplit(".", 1)[0] + ".options"
        self.builder = builder
        self._builtins = builtins
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = False
        REGISTRIES[self.plural] = self

    def register(self, name: str, target: Any = None, *, description: str = "", options: Options | None = None,
                 replace: bool = False, **info: Any) -> Any:
        """Register `target` as `name`; without `target`, a decorator for a class or function.

        Registering a name again from the same module replaces the entry (a re-imported plugin); from
        another module it is refused unless `replace` is true, so a plugin cannot shadow a built-in by
        accident. `origin` (in `info`) overrides the module the entry is attributed to."""
        if target is None:
            def decorate(obj: Any) -> Any:
                self.register(name, obj, description=description, options=options, replace=replace, **info)
                return obj

            return decorate
        if not isinstance(name, str) or not name or any(c.isspace() for c in name):
            raise ValueError(f"{self.kind} names are non-empty strings without spaces, got {name!r}")
        origin = info.pop("origin", None) or target_module(target)
        old = self._entries.get(name)
        if old is not None and not replace and old.origin != origin:
            raise ConfigError(f"{self.kind} {name!r} is already registered by {old.origin}; "
                              f"pick another name or pass replace=True")
        doc = description or (_first_line(getattr(target, "__doc__", None)) if not isinstance(target, str) else "")
        self._entries[name] = Entry(name, target, doc, options or {}, dict(info), origin, self.builder)
        return target

    def _ensure(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self._builtins:
            importlib.import_module(self._builtins)
        _load_entry_points(self)

    def names(self) -> list[str]:
        self._ensure()
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        self._ensure()
        return [self._entries[n] for n in sorted(self._entries)]

    def __contains__(self, name: object) -> bool:
        self._ensure()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> Entry[T]:
        """The entry, or a ConfigError listing the names to choose from."""
        self._ensure()
        if name not in self._entries:
            raise UnknownNameError(f"{self.key}: unknown {self.kind} {name!r}; choose one of: "
                                   f"{', '.join(self.names())}")
        return self._entries[name]

    def load(self, name: str) -> T:
        return self.get(name).load()

    def resolve(self, name: str, given: Optional[Mapping[str, Any]] = None, **context: Any) -> Resolved:
        """The entry `name` with the `given` options checked and defaults filled in (a ConfigError names
        the first problem): what a run builds from, resolved once. `context` goes to a callable option table."""
        entry = self.get(name)
        return Resolved(entry, entry.resolve(given, self.options_key.format(name=name), **context))

    def build(self, name: str, given: Optional[Mapping[str, Any]] = None, **context: Any) -> Any:
        """`resolve` then build, in one call (scripts and tests; a run builds what its Experiment holds)."""
        return self.resolve(name, given).build(**context)

    def unregister(self, name: str) -> None:
        """Remove an entry (tests and plugins that clean up after themselves)."""
        self._entries.pop(name, None)


#: every registry by its plural name, in creation order (`dagrad list` walks it)
REGISTRIES: dict[str, Registry] = {}


def load_target(target: Any) -> Any:
    """The object a lazy "module:attr" string names (attr may be dotted; none: the module itself), or
    `target` itself when it is not a string. The one place dagrad parses such strings."""
    if not isinstance(target, str):
        return target
    module, _, attribute = target.partition(":")
    obj = importlib.import_module(module)
    for part in attribute.split(".") if attribute else ():
        obj = getattr(obj, part)
    return obj


def value_text(value: Any) -> str:
    """An option value as labels show it: numbers without a trailing .0 (3, 0.5), anything else as str."""
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def options_text(options: Mapping[str, Any], defaults: Optional[Mapping[str, Any]]) -> str:
    """" k=v" for each option (sorted) that differs from its default; every option when `defaults` is None
    (a component not registered here, e.g. a plugin's). Components build their labels from it."""
    return "".join(f" {k}={value_text(v)}" for k, v in sorted(options.items())
                   if defaults is None or k not in defaults or defaults[k] != v)


def target_module(target: Any) -> str:
    """The module a "module:attr" string or an object comes from, without importing anything."""
    if isinstance(target, str):
        return target.partition(":")[0]
    return getattr(target, "__module__", None) or type(target).__module__



def _first_line(doc: Optional[str]) -> str:
    return (doc or "").strip().split("\n", 1)[0].strip()


def _load_entry_points(registry: Registry) -> None:
    """Components that installed packages advertise in the entry-point group `dagrad.<plural>`.

    Loading an entry point imports its module, which may register entries itself; otherwise the loaded
    object is registered under the entry point's name. A package that fails to load is named in a
    warning and skipped: one broken install must not take dagrad down."""
    import warnings

    try:
        from importlib.metadata import entry_points

        found = list(entry_points(group=f"dagrad.{registry.plural}"))
    except Exception:  # noqa: BLE001 - unreadable package metadata
        return
    for ep in found:
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001
            warnings.warn(f"{registry.kind} {ep.name!r} from {ep.value} could not be loaded "
                          f"({type(exc).__name__}: {exc}); skipped")
            continue
        if ep.name not in registry._entries:
            registry.register(ep.name, obj)
