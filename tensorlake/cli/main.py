"""``tensorlake`` on the command line: one subcommand group per module of this package.

Each group module has ``add_parser(subparsers)``, which registers its subcommands and
sets ``func`` on their arguments: ``func(args) -> int`` runs one. A user mistake (any
``TensorlakeError``, a missing file) is one line on stderr and exit status 1, never a
traceback; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys

from tensorlake._version import __version__
from tensorlake.cli import config, datasets, ingest, maintenance, registry, upload, versions
from tensorlake.errors import TensorlakeError

__all__ = ["GROUPS", "build_parser", "main"]

GROUPS = [datasets, versions, maintenance, ingest, upload, registry, config]
"""The command-group modules, in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tensorlake", description="Versioned, chunked tensor datasets for machine learning."
    )
    parser.add_argument("--version", action="version", version=f"tensorlake {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        group.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # stdout's reader left (``| head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 1
    except (TensorlakeError, OSError, ValueError) as err:
        if args.debug:
            raise
        print(f"tensorlake: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tensorlake: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
