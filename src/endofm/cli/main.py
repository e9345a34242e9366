"""``endofm`` entry point. Each command group lives in its own module with a ``register``
function that adds its sub-commands; a command's handler is stored as ``func`` and returns an
exit status."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from endofm import __version__

# Modules that contribute sub-commands, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "endofm.cli.checkpoint",
    "endofm.cli.configs",
    "endofm.cli.data",
    "endofm.cli.pretrain",
    "endofm.cli.probe",
    "endofm.cli.tasks",
    "endofm.cli.extract",
    "endofm.cli.predict",
    "endofm.cli.attention",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="endofm",
        description="Endo-FM: a foundation model for endoscopy video analysis.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"endofm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"endofm {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
