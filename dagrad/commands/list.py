"""`dagrad list [KIND]`: what is registered (built-ins and plugins alike), read from the registries."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction, **common) -> argparse.ArgumentParser:
    p = sub.add_parser("list", description="Without KIND: every registry's names. With KIND (e.g. samplers, "
                       "datasets, configs): each entry with its description and options.", **common)
    p.add_argument("kind", nargs="?", help="a registry (algorithms, datasets, networks, samplers, schedules, "
                   "averagers, energy_backends, launchers, commands) or `configs`")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE",
                   help="import a module or .py file that registers components first (repeatable)")
    return p


def all_registries() -> dict:
    """Every registry, with the packages that fill them imported."""
    import dagrad.algorithms  # noqa: F401
    import dagrad.averaging  # noqa: F401
    import dagrad.commands  # noqa: F401
    import dagrad.datasets  # noqa: F401
    import dagrad.energy  # noqa: F401
    import dagrad.gradsamp  # noqa: F401
    import dagrad.launch.runner  # noqa: F401 - the launchers registry
    import dagrad.networks  # noqa: F401
    from dagrad.registry import REGISTRIES

    return REGISTRIES


def _entry_names(registry) -> list[str]:
    return [f"{e.name}:<model>" if e.info.get("family") else e.name for e in registry.entries()]


def run(args: argparse.Namespace) -> int:
    from dagrad.config.files import shipped_configs
    from dagrad.utils.errors import ConfigError
    from dagrad.plugins import PluginConsent, import_plugins

    import_plugins(args.plugin, PluginConsent.of(args.plugin))  # named on the command line: consented
    registries = all_registries()
    if args.kind is None:
        for plural, registry in registries.items():
            print(f"{plural + ':':17s} {', '.join(_entry_names(registry))}")
        print(f"{'configs:':17s} {', '.join(shipped_configs())}")
        return 0
    if args.kind == "configs":
        print("\n".join(shipped_configs()))
        return 0
    if args.kind not in registries:
        raise ConfigError(f"dagrad list: unknown kind {args.kind!r}; choose one of: "
                          f"{', '.join([*registries, 'configs'])}")
    registry = registries[args.kind]
    for entry in registry.entries():
        origin = "" if entry.builtin else f"  [from {entry.origin}]"
        print(f"{entry.name}: {entry.description}{origin}")
        table = entry.option_table()
        for name, opt in table.items():
            doc = f"  {opt.doc}" if opt.doc else ""
            print(f"    {name} = {opt.default!r} ({opt.allowed()}){doc}")
    return 0
