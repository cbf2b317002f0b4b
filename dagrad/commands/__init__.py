"""The `dagrad` commands, one module each with `add_parser(subparsers)` and `run(args) -> int`.

Commands are registered in `COMMANDS` like every other extension point, so a plugin package can add
one (entry-point group `dagrad.commands`); `dagrad --help` lists whatever is registered."""

from __future__ import annotations

from dagrad.registry import Registry

COMMANDS: Registry = Registry("command", "dagrad COMMAND", builtins="dagrad.commands")

for _name, _help in (
    ("demo", "ERM on the embedded rotated_digits: full training vs GradSamp vs skip control"),
    ("train", "train one experiment from YAML config(s)"),
    ("sweep", "run a grid of experiments (skips finished jobs on relaunch)"),
    ("status", "where a sweep or a run stands: jobs done, running, queued, failed; energy so far"),
    ("report", "tables and plots from the records under a folder"),
    ("evaluate", "score a run's kept model (or each sweep cell's selected one) on a dataset or image folder"),
    ("predict", "class probabilities per image from a run's kept model, as CSV"),
    ("export", "a run's kept model as TorchScript or ONNX, checked against the eager model"),
    ("data", "check, download or list datasets"),
    ("energy", "energy meter tools"),
    ("list", "what is registered: algorithms, datasets, networks, samplers, ... and their options"),
):
    COMMANDS.register(_name, f"dagrad.commands.{_name}", description=_help)
