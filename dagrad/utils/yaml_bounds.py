"""YAML with bounds: a config file's size, and the size its aliases expand to.

PyYAML builds an alias as a shared reference, so nine nested levels of nine aliases each (a "billion
laughs" file of a few hundred bytes) load at once as a structure of 9**9 leaves; whatever walks it next
(a deep copy, a hash, an error message) then runs for minutes in gigabytes. `load_bounded` composes the
document, counts the nodes it stands for once every alias is expanded (each distinct node counted once,
so the count itself is linear in the file) and refuses one above `MAX_EXPANDED_NODES` before anything
is built."""

from __future__ import annotations

from typing import Any

import yaml

from dagrad.utils.errors import ConfigError

#: the largest config file read (the biggest shipped config is a few KB)
MAX_CONFIG_BYTES = 1 << 20
#: the most values (mappings, lists, scalars, keys) a YAML document may stand for, aliases expanded
MAX_EXPANDED_NODES = 200_000


def check_size(length: int, where: str) -> None:
    """A ConfigError when a config text of `length` bytes (or characters) is larger than MAX_CONFIG_BYTES."""
    if length > MAX_CONFIG_BYTES:
        raise ConfigError(f"{where}: {length} bytes is too large for a config (at most {MAX_CONFIG_BYTES} bytes)")


def expanded_size(root: yaml.Node) -> int:
    """How many nodes `root` stands for with every alias expanded (shared nodes counted as often as used)."""
    sizes: dict[int, int] = {}
    order: list[yaml.Node] = []
    stack: list[yaml.Node] = [root]
    while stack:  # every distinct node, children after parents (no recursion: deep nesting is fine)
        node = stack.pop()
        if id(node) in sizes:
            continue
        sizes[id(node)] = 0
        order.append(node)
        stack.extend(_children(node))
    for node in reversed(order):  # children before parents
        sizes[id(node)] = min(1 + sum(sizes[id(c)] for c in _children(node)), MAX_EXPANDED_NODES + 1)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load_bounded(text: str, loader_class: type = yaml.SafeLoader, where: str = "config") -> Any:
    """The one YAML document in `text`, through `loader_class` (a safe loader), refused (ConfigError) when
    the text or its alias expansion is over the bounds. YAML syntax errors propagate as yaml.YAMLError."""
    check_size(len(text), where)
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if expanded_size(node) > MAX_EXPANDED_NODES:
            raise ConfigError(f"{where}: its YAML aliases (&anchor / *alias) expand to more than "
                              f"{MAX_EXPANDED_NODES} values; write the values out, or use fewer nested aliases")
        return loader.construct_document(node)
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply to be a config") from None
    finally:
        loader.dispose()
