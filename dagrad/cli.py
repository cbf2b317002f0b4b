"""The `dagrad` command. Its subcommands come from the `COMMANDS` registry (dagrad/commands/).

Bad input (a config key, a dataset, a checkpoint) ends as one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Optional

from dagrad.utils.errors import DagradError
from dagrad.utils.notices import show_warning, warnings_once


def _threads_parent() -> argparse.ArgumentParser:
    """--threads, accepted before or after the subcommand."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--threads", type=int, metavar="N", default=argparse.SUPPRESS,
                        help="torch intra-op threads (default: torch's choice; use 1 per process when running "
                             "several processes on few cores)")
    return parent


def build_parser() -> argparse.ArgumentParser:
    from dagrad.commands import COMMANDS

    common = _threads_parent()
    parser = argparse.ArgumentParser(
        prog="dagrad", parents=[common],
        description="Domain generalization/adaptation baselines (ERM, CORAL, DANN, SWAD) whose epochs can be "
                    "swapped for GradSamp draws, with OOD accuracy set against training energy.",
        epilog="Start with `dagrad demo`. Every command has --help.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for entry in COMMANDS.entries():
        module = entry.load()
        p = module.add_parser(sub, help=entry.description, parents=[common])
        p.set_defaults(handler=module.run)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: Optional[list[str]]) -> argparse.Namespace:
    """The command line, with `key=value` overrides accepted anywhere after the command (argparse takes
    one run of positionals; the overrides it leaves over join the first run, in the order given)."""
    args, extra = parser.parse_known_args(argv)
    overrides = [a for a in extra if "=" in a and not a.startswith("-")]
    if overrides and isinstance(getattr(args, "overrides", None), list) and len(overrides) == len(extra):
        args.overrides = [*args.overrides, *overrides]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Optional[list[str]] = None) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    warnings.showwarning = show_warning  # also for warnings raised while the parser is built
    parser = build_parser()
    args = _parse(parser, argv)
    threads = getattr(args, "threads", None)
    if threads is not None:
        import torch

        if threads < 1:
            print(f"dagrad: error: --threads must be at least 1, got {threads}", file=sys.stderr)
            return 2
        torch.set_num_threads(threads)
    try:
        with warnings_once():
            return args.handler(args)
    except DagradError as exc:
        print(f"dagrad: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `dagrad ... | head`: the reader has what it wanted
        from dagrad.launch.runner import silence_stdout

        silence_stdout()
        return 0
    except OSError as exc:  # a file-system failure no command turned into its own message
        from dagrad.utils.atomic import storage_error

        print(f"dagrad: error: {storage_error(exc.filename or '', exc, 'read or write')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(getattr(args, "on_interrupt", None) or "dagrad: interrupted; a run continues from its last epoch with "
              "`dagrad train --resume --out DIR`", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
