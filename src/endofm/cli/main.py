"""``endofm`` entry point. Each command group lives in its own module with a ``register``
function that adds its sub-commands; a command's handler is stored as ``func`` and returns an
exit status.

Start-up stays fast (``endofm --help`` imports neither torch nor timm): a command module imports
only ``argparse``-level things at the top and the heavy modules inside its handlers. Failures are
reported by :func:`endofm.cli.errors.run_handler` (one line, exit status 1; Ctrl-C 130). The
library's log messages reach stderr through :func:`endofm.cli.console.setup_logging`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from endofm import __version__
from endofm.cli.console import setup_logging, warnings_as_lines
from endofm.cli.errors import debug_requested, run_handler
from endofm.utils.progress import is_quiet, set_quiet

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
    "endofm.cli.export",
    "endofm.cli.stream",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="endofm",
        description="Endo-FM: a foundation model for endoscopy video analysis.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"endofm {__version__}")
    add_common_options(parser, False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for command in _subcommands(parser):
        add_common_options(command, argparse.SUPPRESS)
    return parser


def add_common_options(parser: argparse.ArgumentParser, default: object) -> None:
    """``--quiet`` and ``--debug``, accepted before or after the command name."""
    parser.add_argument("--quiet", action="store_true", default=default,
                        help="no progress bars and no messages but warnings and errors "
                             "(also ENDOFM_QUIET=1)")
    parser.add_argument("--debug", action="store_true", default=default,
                        help="debug messages with the name of the module that logs them, and the "
                             "traceback of an error (also ENDOFM_DEBUG=1)")


def _subcommands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every (nested) sub-command parser below ``parser``."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found += [child, *_subcommands(child)]
    return found


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """``parser.parse_args``, except that a command's ``key=value`` overrides may also come
    after its options (``... train.epochs=1 --output runs/x head.num_layers=1``): argparse
    fills a positional list once and would call the later ones unrecognized."""
    args, extra = parser.parse_known_args(argv)
    overrides = [a for a in extra if "=" in a and not a.startswith("-")]
    unknown = [a for a in extra if a not in overrides]
    if unknown or (overrides and not isinstance(getattr(args, "overrides", None), list)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if overrides:
        args.overrides = [*args.overrides, *overrides]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parse_args(parser, argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    set_quiet(args.quiet)
    debug = args.debug or debug_requested(argv)
    setup_logging(quiet=is_quiet(), debug=debug)
    with warnings_as_lines(debug):
        return run_handler(args.func, args, debug)


if __name__ == "__main__":
    sys.exit(main())
