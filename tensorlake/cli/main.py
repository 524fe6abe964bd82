"""``tensorlake`` on the command line: inspect datasets (more commands to come)."""

from __future__ import annotations

import argparse
import sys

from tensorlake._version import __version__
from tensorlake.api.factory import load

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tensorlake", description="Versioned, chunked tensor datasets for machine learning."
    )
    parser.add_argument("--version", action="version", version=f"tensorlake {__version__}")
    sub = parser.add_subparsers(dest="command")
    info = sub.add_parser("info", help="print a dataset's tensors, htypes and shapes")
    info.add_argument("path", help="dataset path: local directory, s3://bucket/prefix, mem://name")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "info":
        try:
            load(args.path, read_only=True).summary()
        except Exception as err:  # report, don't dump a traceback on the user
            print(f"tensorlake: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
