"""Featurizers by name. An entry builds `entry.build(options, input_shape=(C, H, W))`, which calls
`fn(input_shape, **options)`, and the result says how wide its features are (`n_outputs`). A family entry
(`timm`) serves every name `timm:<member>`: the builder is given `model=<member>` besides its options
(`resolve_network` fixes it)."""

from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from dagrad.utils.errors import ConfigError
from dagrad.registry import Entry, Registry, Resolved

def _build(entry: Entry, options: dict[str, Any], input_shape: tuple[int, ...], **member: Any) -> nn.Module:
    net = entry.load()(tuple(input_shape), **member, **options)
    if not hasattr(net, "n_outputs"):
        raise ConfigError(f"network {entry.name!r} built a module without `n_outputs` (its feature width)")
    return net


NETWORKS: Registry = Registry("network", "network.name", builtins="dagrad.networks.featurizers", builder=_build)


def network_entry(name: str) -> tuple[Entry, dict[str, Any]]:
    """The entry serving `name` and the keyword a family entry needs (`timm:resnet18` -> model)."""
    family, sep, member = name.partition(":")
    if family not in NETWORKS or bool(sep) != bool(NETWORKS.get(family).info.get("family")):
        raise ConfigError(f"network.name: unknown network {name!r}; choose one of: {', '.join(network_names())}")
    entry = NETWORKS.get(family)
    if not sep:
        return entry, {}
    if not member:
        raise ConfigError(f"network.name: {name!r} is not a network; families take {family}:<model>, "
                          f"choose one of: {', '.join(network_names())}")
    check = entry.info.get("check_member")
    if check is not None:
        check(member)
    return entry, {"model": member}


def network_names() -> list[str]:
    return [f"{e.name}:<model>" if e.info.get("family") else e.name for e in NETWORKS.entries()]


def resolve_network(name: str, options: Mapping[str, Any] | None = None) -> Resolved:
    """The network `name` (a family member too) with its options checked and defaults filled in."""
    entry, member = network_entry(name)
    return Resolved(entry, entry.resolve(options, NETWORKS.options_key), member)


def build_featurizer(name: str, options: Mapping[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
    """The featurizer `name` with its options, for inputs of `input_shape` (C, H, W) (scripts and tests: a run
    builds the network its Experiment holds)."""
    return resolve_network(name, options).build(input_shape=input_shape)
