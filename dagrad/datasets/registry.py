"""Datasets by name. Builders are imported only when used, so checking a name is cheap."""

from __future__ import annotations

import importlib
from typing import Any, Callable

from dagrad.errors import ConfigError

#: name -> "module:function"; each function takes the DataConfig and returns a DomainSuite
_BUILDERS: dict[str, str] = {
    "rotated_digits": "dagrad.datasets.digits:rotated_digits",
    "stroke_digits": "dagrad.datasets.digits:stroke_digits",
    "pacs": "dagrad.datasets.folders:domainbed",
    "office_home": "dagrad.datasets.folders:domainbed",
    "domain_net": "dagrad.datasets.folders:domainbed",
    "vlcs": "dagrad.datasets.folders:domainbed",
    "terra_incognita": "dagrad.datasets.folders:domainbed",
    "folder": "dagrad.datasets.folders:folder",
    "pacs_dassl": "dagrad.datasets.dassl:pacs_dassl",
    "office_home_dg": "dagrad.datasets.dassl:office_home_dg",
    "domain_net_dassl": "dagrad.datasets.dassl:domain_net_dassl",
    "wilds_domain_net": "dagrad.datasets.wilds_adapter:wilds_domain_net",
    "wilds_camelyon17": "dagrad.datasets.wilds_adapter:wilds_camelyon17",
    "wilds_fmow": "dagrad.datasets.wilds_adapter:wilds_fmow",
}
_EXTRA: dict[str, Callable[[Any], Any]] = {}


def register(name: str, builder: Callable[[Any], Any]) -> None:
    """Make a dataset builder available as `data.name: <name>`."""
    _EXTRA[name] = builder


def names() -> list[str]:
    return sorted(set(_BUILDERS) | set(_EXTRA))


def check_name(name: str) -> None:
    if name not in _BUILDERS and name not in _EXTRA:
        raise ConfigError(f"data.name: unknown dataset {name!r}; choose one of: {', '.join(names())}")


def builder(name: str) -> Callable[[Any], Any]:
    check_name(name)
    if name in _EXTRA:
        return _EXTRA[name]
    module, function = _BUILDERS[name].split(":")
    return getattr(importlib.import_module(module), function)
