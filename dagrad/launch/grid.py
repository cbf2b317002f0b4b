"""Sweep files -> fully resolved, validated experiment configurations.

A sweep YAML has a `base:` (config file paths relative to the sweep file and/or inline mappings, merged
in order) and a `grid:` whose axes multiply: datasets x algorithms x test environments x GradSamp
settings x hparams seeds x trial seeds x any extra `axes:` (dotted key -> list of values) x any named
`variants:` (axis -> name -> {dotted key: value}, for settings that only make sense together, e.g. a
schedule with its options, or bf16 with channels_last). `exclude:` drops the points that match a rule
(axis -> value or list of values; a point matching every axis of one rule is left out), so a grid need
not be a full product. Every grid point becomes one checked Experiment; its identity (run_id) depends only
on the resolved configuration, never on where the point sits in the grid. Base files may be paths or the
names of shipped configs.

Command-line `key=value` overrides (`dagrad sweep -c X grid.trial_seeds=[0,1] epochs=3`) change the sweep
as the same key in its file would: a key under name/base/grid/launcher sets that part of the sweep, any
other key is an experiment key that joins `base:` last, so every job gets it and the jobs' identities are
those of a file holding it. A grid axis always decides its own keys; an override of such a key is refused
with the axis to change instead.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from dagrad.config.schema import check_name, from_dict
from dagrad.config.files import apply_overrides, deep_merge, read_yaml
from dagrad.config.experiment import Experiment, resolve as resolve_experiment
from dagrad.utils.errors import ConfigError, clip
from dagrad.plugins import NO_PLUGINS, PluginConsent

GRID_KEYS = {"datasets", "algorithms", "test_envs", "leave_one_out_envs", "gradsamp", "hparams_seeds",
             "trial_seeds", "axes", "variants", "exclude"}
#: the axes an `exclude:` rule may name besides the variant axes and the `axes:` keys
RULE_AXES = ("datasets", "algorithms", "gradsamp")
TOP_KEYS = {"name", "base", "grid", "launcher"}


@dataclass(frozen=True)
class GridPoint:
    """One combination of the grid's axes, with the names a person would use for it."""

    dataset: str
    algorithm: str
    test_envs: Optional[tuple[int, ...]]  # None: the configuration's own data.test_envs
    setting: str
    hparams_seed: int
    trial_seed: int
    extra: tuple[tuple[str, Any], ...] = ()
    variants: tuple[tuple[str, str], ...] = ()  # (variant axis, variant name)


@dataclass
class SweepSpec:
    """A sweep file as read (`read_sweep`): its base config, grid points and `launcher:` block, from which every
    job is resolved; reading it builds and writes nothing."""

    name: str
    path: Path
    base: dict
    points: list[GridPoint]
    settings: dict[str, dict]
    datasets: dict[str, dict] = field(default_factory=dict)
    variants: dict[str, dict[str, dict]] = field(default_factory=dict)
    #: the `launcher:` block: `name` (the default launcher, or None) and that launcher's options; where and
    #: how jobs run, never what they compute, so none of it enters a job's identity
    launcher: dict = field(default_factory=dict)
    #: the command line's experiment keys (dotted key, value, as typed), which every job must keep
    overrides: tuple[tuple[str, Any, str], ...] = ()


def _as_list(value: Any, key: str) -> list:
    if value is None:
        raise ConfigError(f"grid.{key}: must not be empty")
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ConfigError(f"grid.{key}: must list at least one value")
    return values


def _named(value: Any, key: str, field_name: str) -> dict[str, dict]:
    """A list of names or a mapping name -> overrides (dict of config keys)."""
    if isinstance(value, dict):
        out = {}
        for name, overrides in value.items():
            if overrides is not None and not isinstance(overrides, dict):
                raise ConfigError(f"grid.{key}.{name}: expected a mapping of {field_name} overrides, got {clip(overrides)}")
            out[str(name)] = dict(overrides or {})
        if not out:
            raise ConfigError(f"grid.{key}: must name at least one value")
        return out
    return {str(v): {} for v in _as_list(value, key)}


def _datasets(value: Any, folder: Path) -> dict[str, dict]:
    """Dataset names, or name -> config overrides (a mapping, or a config file relative to the sweep)."""
    if not isinstance(value, dict):
        return {str(v): {} for v in _as_list(value, "datasets")}
    out = {}
    for name, item in value.items():
        if isinstance(item, str):
            item = read_yaml(item, relative_to=folder)
        if item is not None and not isinstance(item, dict):
            raise ConfigError(f"grid.datasets.{name}: expected a config file or a mapping, got {clip(item)}")
        out[str(name)] = dict(item or {})
    if not out:
        raise ConfigError("grid.datasets: must name at least one dataset")
    return out


def _seeds(value: Any, key: str) -> list[int]:
    """A list of seeds, or an integer n meaning 0..n-1."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ConfigError(f"grid.{key}: a count must be at least 1, got {value}")
        return list(range(value))
    seeds = _as_list(value, key)
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ConfigError(f"grid.{key}: expected non-negative integers or a count, got {clip(value)}")
    return seeds


def _test_envs(grid: dict) -> list[Optional[tuple[int, ...]]]:
    """Test-environment sets; `leave_one_out_envs: N` adds every pair {t, v}, v < N, for each single t.
    Without the axis, each job keeps its configuration's own data.test_envs."""
    if "test_envs" not in grid:
        if grid.get("leave_one_out_envs") is not None:
            raise ConfigError("grid.leave_one_out_envs: needs grid.test_envs (the single test environments to pair)")
        return [None]
    raw = grid["test_envs"]
    sets = []
    for item in _as_list(raw, "test_envs"):
        envs = item if isinstance(item, list) else [item]
        if not all(isinstance(e, int) and not isinstance(e, bool) and e >= 0 for e in envs):
            raise ConfigError(f"grid.test_envs: {clip(item)} is not an environment index or a list of them")
        sets.append(tuple(sorted(set(envs))))
    n_envs = grid.get("leave_one_out_envs")
    if n_envs is not None:
        if not isinstance(n_envs, int) or n_envs < 2:
            raise ConfigError(f"grid.leave_one_out_envs: the number of environments (>= 2), got {n_envs!r}")
        singles = [s[0] for s in sets if len(s) == 1]
        sets += [tuple(sorted((t, v))) for t in singles for v in range(n_envs) if v != t]
    return list(dict.fromkeys(sets))


def split_overrides(overrides: Sequence[str]) -> tuple[list[str], list[str]]:
    """`key=value` items -> (the sweep's own keys: name/base/grid/launcher..., the experiment keys)."""
    sweep_keys, job_keys = [], []
    for item in overrides:
        (sweep_keys if item.split("=", 1)[0].strip().split(".")[0] in TOP_KEYS else job_keys).append(item)
    return sweep_keys, job_keys


def _with_overrides(raw: dict, overrides: Sequence[str]) -> tuple[dict, tuple[tuple[str, Any, str], ...]]:
    """The sweep document with the command line's keys applied (see the module docstring)."""
    sweep_keys, job_keys = split_overrides(overrides)
    out = apply_overrides(raw, sweep_keys)
    kept = []
    if job_keys:
        top = apply_overrides({}, job_keys)
        base = out.get("base") or []
        out["base"] = [*(base if isinstance(base, list) else [base]), top]
        for item in job_keys:
            key = item.split("=", 1)[0].strip()
            kept.append((key, _get(top, key), item))
    return out, tuple(kept)


def _get(data: dict, dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


_MISSING = object()


def read_sweep(path: str | Path, overrides: Sequence[str] = ()) -> SweepSpec:
    """Parse a sweep file (base configs read, grid axes checked), with the command line's `key=value`
    overrides applied; nothing is built or written."""
    path = Path(path)
    raw, kept = _with_overrides(read_yaml(path), overrides)
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise ConfigError(f"{path.name}: unknown key {clip(str(unknown[0]))}; a sweep has: {', '.join(sorted(TOP_KEYS))}")
    base: dict = {}
    items = raw.get("base") or []
    for i, item in enumerate(items if isinstance(items, list) else [items]):
        if isinstance(item, str):
            base = deep_merge(base, read_yaml(item, relative_to=path.parent))
        elif isinstance(item, dict):
            base = deep_merge(base, item)
        else:
            raise ConfigError(f"base[{i}]: expected a config file path or a mapping, got {clip(item)}")
    grid = raw.get("grid") or {}
    if not isinstance(grid, dict):
        raise ConfigError(f"grid: expected a mapping of axes, got {clip(grid)}")
    unknown = sorted(set(grid) - GRID_KEYS)
    if unknown:
        raise ConfigError(f"grid.{unknown[0]}: unknown axis; allowed: {', '.join(sorted(GRID_KEYS))}")
    datasets = _datasets(grid.get("datasets", [base.get("data", {}).get("name", "rotated_digits")]), path.parent)
    algorithms = [str(a) for a in _as_list(grid.get("algorithms", [base.get("algorithm", {}).get("name", "erm")]),
                                           "algorithms")]
    settings = _named(grid.get("gradsamp", {"none": {"sampler": "none"}}), "gradsamp", "gradsamp")
    settings = {name: overrides or {"sampler": name} for name, overrides in settings.items()}
    axes = grid.get("axes") or {}
    if not isinstance(axes, dict):
        raise ConfigError(f"grid.axes: expected a mapping of dotted key -> list of values, got {clip(axes)}")
    extra = [[(key, v) for v in _as_list(values, f"axes.{key}")] for key, values in axes.items()]
    variants = _variants(grid.get("variants"))
    clash = sorted(set(variants) & set(axes))
    if clash:
        raise ConfigError(f"grid.variants.{clash[0]}: also an `axes:` key; give the variant axis another name")
    named = [[(axis, name) for name in names] for axis, names in variants.items()]
    points = [
        GridPoint(ds, algo, envs, setting, hs, ts, tuple(combo[:len(extra)]), tuple(combo[len(extra):]))
        for ds, algo, envs, setting, hs, ts, *combo in itertools.product(
            datasets, algorithms, _test_envs(grid), settings, _seeds(grid.get("hparams_seeds", [0]), "hparams_seeds"),
            _seeds(grid.get("trial_seeds", [0]), "trial_seeds"), *extra, *named)
    ]
    values = {"datasets": list(datasets), "algorithms": algorithms, "gradsamp": list(settings),
              **{axis: list(names) for axis, names in variants.items()},
              **{key: [v for _, v in options] for key, options in zip(axes, extra)}}
    rules = _rules(grid.get("exclude"), values)
    points = [p for p in points if not any(_matches(p, rule) for rule in rules)]
    if not points:
        raise ConfigError("grid.exclude: the rules leave no job to run")
    return SweepSpec(check_name(str(raw.get("name") or path.stem), "name"), path, base, points, settings, datasets,
                 variants, _launcher_block(raw.get("launcher")), kept)


def _launcher_block(block: Any) -> dict:
    """The `launcher:` block's shape (a mapping, its `name` a word). Its name and options are checked against
    the launchers' registry where the launcher is chosen (launch.choose_launcher, the dry run's preflight),
    so reading a sweep needs no launcher and imports none."""
    if block is None:
        return {}
    if isinstance(block, str):
        block = {"name": block}
    if not isinstance(block, dict):
        raise ConfigError(f"launcher: expected a mapping (name: slurm, partition: ..., ...), got {clip(block)}")
    block = dict(block)
    if "name" in block and not isinstance(block["name"], str):
        raise ConfigError(f"launcher.name: expected a launcher's name (local, processes, slurm, ...), got "
                          f"{clip(block['name'])}")
    return block


def _variants(value: Any) -> dict[str, dict[str, dict]]:
    """grid.variants: axis -> {variant name -> {dotted key: value}}; each axis multiplies the grid."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"grid.variants: expected a mapping of axis -> {{name -> settings}}, got {clip(value)}")
    out: dict[str, dict[str, dict]] = {}
    for axis, named in value.items():
        axis = str(axis)
        if axis in RULE_AXES or "." in axis:
            raise ConfigError(f"grid.variants.{axis}: a variant axis needs its own name (not {', '.join(RULE_AXES)} "
                              "and without dots)")
        if not isinstance(named, dict) or not named:
            raise ConfigError(f"grid.variants.{axis}: expected a mapping of variant name -> {{dotted key: value}}, "
                              f"got {clip(named)}")
        out[axis] = {}
        for name, settings in named.items():
            if settings is not None and not isinstance(settings, dict):
                raise ConfigError(f"grid.variants.{axis}.{name}: expected a mapping of dotted key -> value, "
                                  f"got {clip(settings)}")
            out[axis][str(name)] = dict(settings or {})
    return out


def _rules(value: Any, values: dict[str, list]) -> list[dict[str, list]]:
    """grid.exclude: a list of rules, each axis -> value or list of values, every value one the axis has."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"grid.exclude: expected a list of rules (axis -> value or list of values), got {clip(value)}")
    rules = []
    for i, rule in enumerate(value):
        if not isinstance(rule, dict) or not rule:
            raise ConfigError(f"grid.exclude[{i}]: expected a mapping of axis -> value or list, got {clip(rule)}")
        checked = {}
        for axis, wanted in rule.items():
            if axis not in values:
                raise ConfigError(f"grid.exclude[{i}].{axis}: not an axis of this grid; allowed: "
                                  f"{', '.join(values)}")
            wanted = wanted if isinstance(wanted, list) else [wanted]
            unknown = [w for w in wanted if w not in values[axis]]
            if unknown:
                raise ConfigError(f"grid.exclude[{i}].{axis}: {unknown[0]!r} is not one of its values "
                                  f"({', '.join(map(str, values[axis]))})")
            checked[axis] = wanted
        rules.append(checked)
    return rules


def _matches(point: GridPoint, rule: dict[str, list]) -> bool:
    own = {"datasets": point.dataset, "algorithms": point.algorithm, "gradsamp": point.setting,
           **dict(point.variants), **dict(point.extra)}
    return all(own[axis] in wanted for axis, wanted in rule.items())


def _set(data: dict, dotted: str, value: Any, where: str = "grid.axes") -> None:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{where}.{dotted}: '{part}' is not a section")
    node[parts[-1]] = copy.deepcopy(value)


def point_experiment(sweep: SweepSpec, point: GridPoint, plugins: PluginConsent = NO_PLUGINS) -> Experiment:
    """The checked experiment of one grid point (base, then the point's axes on top); its plugins are
    imported only with the user's consent (`plugins`)."""
    own = sweep.datasets.get(point.dataset, {})
    data = deep_merge(sweep.base, own)
    data = deep_merge(data, {"data": {"name": (own.get("data") or {}).get("name", point.dataset)}})
    data = deep_merge(data, {"algorithm": {"name": point.algorithm, "hparams_seed": point.hparams_seed},
                             "trial_seed": point.trial_seed})
    if point.test_envs is not None:
        data["data"]["test_envs"] = list(point.test_envs)
    data = deep_merge(data, {"gradsamp": sweep.settings[point.setting]})
    for axis, name in point.variants:
        for key, value in sweep.variants[axis][name].items():
            _set(data, key, value, f"grid.variants.{axis}.{name}")
    for key, value in point.extra:
        _set(data, key, value)
    where = f"{sweep.path.name}, job {describe(point)}"
    for key, value, item in sweep.overrides:
        if _get(data, key) != value:
            raise ConfigError(f"override {item!r}: the grid sets {key} for each job (job {describe(point)}: "
                              f"{_get(data, key)!r}); change the grid instead, e.g. {_axis_hint(key)}")
    try:
        return resolve_experiment(from_dict(data), plugins)
    except ConfigError as exc:
        raise type(exc)(f"{where}: {exc}") from None


#: job orders: `side-by-side` puts the settings compared (full training, each reading, its skip control)
#: of one (dataset, algorithm, test environments, hparams seed, trial seed, axes, variants) next to each
#: other, so a change in the machine's load falls on every arm alike and workers run them at the same time;
#: `grouped` runs each setting's jobs together, setting after setting (the grid's own order)
ORDERS = ("side-by-side", "grouped")


def comparison(point: GridPoint) -> tuple:
    """What a grid point is compared within: every axis but the GradSamp setting."""
    return (point.dataset, point.algorithm, point.test_envs, point.hparams_seed, point.trial_seed, point.extra,
            point.variants)


def check_order(order: str) -> str:
    if order not in ORDERS:
        raise ConfigError(f"order: unknown job order {order!r}; choose one of: {', '.join(ORDERS)}")
    return order


def in_order(items: list, point_of: Any, order: str = "side-by-side") -> list:
    """`items` (in the grid's order) in job order `order`; `point_of(item)` is the item's GridPoint. The
    side-by-side order keeps each comparison where its first job stood and its settings in grid order."""
    if check_order(order) == "grouped":
        return list(items)
    first: dict[tuple, int] = {}
    for i, item in enumerate(items):
        first.setdefault(comparison(point_of(item)), i)
    return sorted(items, key=lambda item: first[comparison(point_of(item))])  # stable: grid order within


def _axis_hint(key: str) -> str:
    hints = {"trial_seed": "grid.trial_seeds=[0,1]", "algorithm.hparams_seed": "grid.hparams_seeds=[0,1]",
             "algorithm.name": "grid.algorithms=[erm]", "data.name": "grid.datasets=[rotated_digits]",
             "data.test_envs": "grid.test_envs=[0,1]"}
    if key.startswith("gradsamp."):
        return "grid.gradsamp=[none]"
    return hints.get(key, f"grid.axes.{key}=[...]")


def describe(point: GridPoint) -> str:
    """A short human name of a grid point (for progress and error lines)."""
    extra = "".join(f" {k}={v}" for k, v in (*point.variants, *point.extra))
    envs = "as configured" if point.test_envs is None else ",".join(map(str, point.test_envs))
    return (f"{point.dataset}/{point.algorithm}/{point.setting} test_envs={envs} hparams_seed={point.hparams_seed} "
            f"trial_seed={point.trial_seed}{extra}")


def identity(exp: Experiment) -> str:
    """The job's folder name: the experiment's identity (grid order plays no part)."""
    return exp.run_id
