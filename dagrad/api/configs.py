"""What `dagrad.train` accepts as a config, turned into a checked experiment the way the CLI does it.

A config is a path or shipped name (`experiments/pacs`), a list of them (merged in order), a dict, an
`ExperimentConfig` or an `Experiment`. Overrides are keyword arguments: dotted keys written with `__`
(`algorithm__name="coral"`), dotted keys as such (`**{"algorithm.name": "coral"}`), or a section as a
dict (`gradsamp={"sampler": "tensor"}`, merged into the section). Values are Python values (numpy
numbers, tuples and paths read as numbers, lists and strings), never parsed as text. Every problem is
the ConfigError the CLI prints for the same key.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from dagrad.config.schema import ExperimentConfig, from_dict, to_dict
from dagrad.config.files import apply_overrides, deep_merge, read_yaml, set_key
from dagrad.utils.errors import ConfigError
from dagrad.config.experiment import Experiment, resolve
from dagrad.utils.notices import warnings_once
from dagrad.plugins import NO_PLUGINS, PluginConsent, with_plugins
from dagrad.utils.plain import plain
from dagrad.run.resuming import check_same_run, recorded_header

#: what `dagrad.train` accepts as `config`
ConfigLike = Union[str, Path, Sequence[Union[str, Path]], Mapping[str, Any], ExperimentConfig, Experiment, None]


def config_data(config: ConfigLike) -> dict:
    """The config as plain data, before overrides."""
    if config is None:
        return {}
    if isinstance(config, Experiment):
        return to_dict(config.cfg)
    if isinstance(config, ExperimentConfig):
        return to_dict(config)
    if isinstance(config, Mapping):
        return plain(dict(config))
    if isinstance(config, (str, Path)):
        return read_yaml(config)
    if isinstance(config, (list, tuple)) and all(isinstance(c, (str, Path)) for c in config):
        data: dict = {}
        for path in config:
            data = deep_merge(data, read_yaml(path))
        return data
    raise ConfigError(f"config: expected a path, a list of paths, a dict or an ExperimentConfig, "
                      f"got {type(config).__name__}")


def with_overrides(data: dict, overrides: Mapping[str, Any]) -> dict:
    """`data` with keyword overrides applied in order (see the module docstring)."""
    out = copy.deepcopy(data)
    for name, value in overrides.items():
        key = name.replace("__", ".")
        current: Any = out
        for part in key.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        value = plain(dict(value) if isinstance(value, Mapping) else value)  # numpy numbers, tuples, paths
        if isinstance(value, dict) and isinstance(current, dict):
            value = deep_merge(current, value)
        set_key(out, key, value, f"{key}={value!r}")
    return out


def consent(plugins: Sequence[str] = (), allow_plugins: bool = False) -> PluginConsent:
    """The API's plugin consent, as the CLI's `--plugin X` / `--allow-plugins`: plugins run code, so only
    those named here (or all, with allow_plugins) are imported."""
    from dagrad.api import arguments

    return PluginConsent.of(arguments.plugin_list(plugins), bool(allow_plugins))


def experiment(config: ConfigLike = None, overrides: Optional[Mapping[str, Any] | Sequence[str]] = None,
               plugins: PluginConsent = NO_PLUGINS, entries: Optional[Sequence[str]] = None) -> Experiment:
    """A config and overrides (keyword overrides, or the command line's `key=value` items), checked against
    the schema and the registries; the plugins `entries` (default: those named in `plugins`) are added to
    the config's list."""
    data = config_data(config)
    if isinstance(overrides, (list, tuple)):
        data = apply_overrides(data, list(overrides))
    else:
        data = with_overrides(data, overrides or {})
    cfg = from_dict(data)
    cfg.plugins = with_plugins(cfg.plugins, sorted(plugins.named) if entries is None else entries)
    return resolve(cfg, plugins)


def check_config(config: ConfigLike = None, *, plugins: Sequence[str] = (), allow_plugins: bool = False,
                 **overrides: Any) -> Experiment:
    """The experiment `dagrad.train(config, **overrides)` would run, checked, without training it
    (`.run_id` is its identity, `.canonical()` every option filled in)."""
    with warnings_once():
        return experiment(config, overrides, consent(plugins, allow_plugins))


def experiment_to_resume(folder: str | Path, config: ConfigLike = None,
                         overrides: Optional[Mapping[str, Any] | Sequence[str]] = None,
                         plugins: PluginConsent = NO_PLUGINS, entries: Optional[Sequence[str]] = None) -> Experiment:
    """The run recorded in `folder`: its recorded config with the overrides on top, or the config given,
    which must describe the same experiment (a ConfigError names the keys that differ). The run's records
    are read once."""
    header = recorded_header(folder)
    base = header["config"] if config is None else config_data(config)
    return check_same_run(folder, experiment(base, overrides, plugins, entries), header)
