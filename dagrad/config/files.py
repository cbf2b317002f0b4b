"""Experiment configuration from YAML files: safe parsing, `include:`, shipped configs by name, overrides.

A YAML file may `include:` other files (paths relative to it, or the names of the configs dagrad ships,
e.g. `datasets/pacs`); they are merged first, in order, and the file's own keys go on top. Command-line
`key=value` overrides (dotted keys, YAML values) go last. The result is checked by `dagrad.config.schema`.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Optional

import yaml

from dagrad.config.schema import ExperimentConfig, _kind, from_dict
from dagrad.utils.errors import ConfigError, clip
from dagrad.utils.yaml_bounds import check_size, load_bounded


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that names a key twice (the last would silently win)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice (line {seen[key]} and line {key_node.start_mark.line + 1})",
                key_node.start_mark)
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def parse_yaml(text: str, where: str) -> Any:
    """YAML through the safe loader (never runs code), duplicate keys refused, errors as one line."""
    try:
        return load_bounded(text, _UniqueKeyLoader, where)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}: not valid YAML ({problem}{line})") from None


#: the configs dagrad ships (datasets/, algorithms/, experiments/, sweeps/, demo.yaml), usable by name
PACKAGED_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def find_config(ref: str | Path, relative_to: Optional[Path] = None) -> Path:
    """A config file: a path (relative to `relative_to`, the including file's folder, when given; else to
    the working folder), or the name of a shipped config (`experiments/pacs`, `dagrad:sweeps/digits`)."""
    text = str(ref)
    path = Path(text).expanduser()
    if relative_to is not None and not path.is_absolute():
        if (relative_to / path).is_file():
            return (relative_to / path).resolve()
    elif path.is_file():
        return path.resolve()
    name = text.removeprefix("dagrad:")
    packaged = PACKAGED_CONFIGS / (name if name.endswith((".yaml", ".yml")) else name + ".yaml")
    if packaged.is_file() and ".." not in Path(name).parts:
        return packaged.resolve()
    where = f"{relative_to / path}" if relative_to is not None and not path.is_absolute() else f"{path.absolute()}"
    raise ConfigError(f"config file not found: {text} (no file at {where}, and no shipped config of that name; "
                      f"`dagrad list configs` names them)")


def shipped_configs() -> list[str]:
    """Names of the configs dagrad ships, usable wherever a config file is expected."""
    return sorted(str(p.relative_to(PACKAGED_CONFIGS).with_suffix("")) for p in PACKAGED_CONFIGS.rglob("*.yaml"))


def read_yaml(path: str | Path, _seen: tuple = (), relative_to: Optional[Path] = None) -> dict:
    """A YAML file (a path or a shipped config's name) with its `include:` files merged underneath it."""
    path = find_config(path, relative_to)
    if path in _seen:
        raise ConfigError(f"{path}: includes itself (through {' -> '.join(p.name for p in _seen)})")
    try:
        check_size(path.stat().st_size, str(path))
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {exc.start}); save the config as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        data = parse_yaml(text, str(path)) or {}
    except ConfigError:
        if path.suffix.lower() in CONFIG_SUFFIXES:
            raise
        raise ConfigError(_not_a_config(path, "it is not valid YAML")) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {_kind(data)}")
    odd = [k for k in data if not (isinstance(k, str) and _KEY_WORD.fullmatch(k))]
    if odd:
        raise ConfigError(_not_a_config(path, "a top-level key is not a config key"))
    includes = data.pop("include", None)
    merged: dict = {}
    for inc in _include_list(includes, path):
        merged = deep_merge(merged, read_yaml(inc, _seen + (path,), relative_to=path.parent))
    return deep_merge(merged, data)


#: what a config file's name ends with; another file's YAML errors are not quoted (they show its content)
CONFIG_SUFFIXES = (".yaml", ".yml")
#: a top-level key as configs and sweeps write them (`data`, `epochs`, a dotted `data.name`)
_KEY_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


def _not_a_config(path: Path, why: str) -> str:
    """An error about a file that may not be a config at all (a key file, /etc/shadow): never its content."""
    return (f"{path}: not a dagrad config ({why}; its content is not shown); configs are YAML mappings of "
            "config keys, e.g. `epochs: 5`")


def _include_list(includes: Any, path: Path) -> list[str]:
    if includes is None:
        return []
    items = [includes] if isinstance(includes, str) else includes
    if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
        raise ConfigError(f"{path}: include: expected a file path or a list of file paths, got {clip(includes)}")
    return items


def deep_merge(base: dict, top: dict) -> dict:
    """Mappings merged key by key; anything else in `top` replaces what is in `base`."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `a.b.c=value` overrides; values are parsed as YAML (`x=[1,2]`, `y=null`, `z=true`)."""
    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {clip(item)} must look like key=value (e.g. algorithm.name=coral)")
        key, raw = item.split("=", 1)
        try:
            value = load_bounded(raw, where=f"override {clip(item)}") if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        set_key(out, key, value, item)
    return out


def set_key(data: dict, key: str, value: Any, item: Optional[str] = None) -> None:
    """Set the dotted `key` in `data` in place, making sections on the way; `item` names the override in errors."""
    item = item if item is not None else f"{key}={clip(value)}"
    item = item if len(item) <= 80 else item[:77] + "..."
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {item!r}: the key has an empty part")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: '{part}' is not a section")
    node[parts[-1]] = value


def load_config(paths: list[str] | str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Files merged in order, overrides applied, every key and value checked against the schema.

    Component names and options are checked by `dagrad.experiment.resolve`."""
    data: dict = {}
    for path in [paths] if isinstance(paths, (str, Path)) else (paths or []):
        data = deep_merge(data, read_yaml(path))
    return from_dict(apply_overrides(data, list(overrides or [])))
