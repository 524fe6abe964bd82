"""What the dataset commands share: a parser with an example in its help, the PATH
argument with its S3 options, ``--json`` output, and the confirmation that destructive
commands ask for.

Conventions: results go to stdout (``--json``: one JSON document there, nothing else),
progress bars and messages to stderr; exit status 0 when done, 1 when it failed (one
line on stderr, from ``main``), 2 for bad usage (argparse).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import textwrap
from typing import Any

from tensorlake.api.dataset import Dataset
from tensorlake.api.factory import load

__all__ = [
    "add_json",
    "add_path",
    "add_yes",
    "command",
    "confirm",
    "creds",
    "layout",
    "open_dataset",
    "print_json",
    "s3_creds",
]

PATH_HELP = (
    "the dataset: a local directory, s3://bucket/prefix, mem://name or a registry name; "
    "PATH@REF for a branch or commit"
)


def command(
    sub: Any, name: str, help: str, examples: list[str], description: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` ends with ``examples`` (command lines)."""
    return sub.add_parser(
        name, help=help, **layout(description or f"{help[0].upper()}{help[1:]}.", examples)
    )


def layout(description: str, examples: list[str]) -> dict[str, Any]:
    """``add_parser`` arguments for a help text of ``description`` (wrapped to the
    terminal) and then ``examples``, one command line each (kept as they are)."""
    width = max(40, min(shutil.get_terminal_size().columns - 2, 88))
    title = "example" if len(examples) == 1 else "examples"
    return {
        "description": textwrap.fill(description, width),
        "formatter_class": argparse.RawDescriptionHelpFormatter,
        "epilog": f"{title}:\n" + "\n".join(f"  {line}" for line in examples),
    }


def add_path(parser: argparse.ArgumentParser, help: str = PATH_HELP) -> None:
    """PATH, the S3 options for it, and ``--debug`` (also accepted after the command)."""
    parser.add_argument("path", metavar="PATH", help=help)
    parser.add_argument("--endpoint-url", metavar="URL", help="an S3-compatible endpoint (s3://)")
    parser.add_argument("--profile", metavar="NAME", help="an AWS profile to sign with (s3://)")
    # SUPPRESS: when not given here, the main parser's value stays
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


def add_yes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-y", "--yes", action="store_true", help="do not ask (needed when stdin is no terminal)"
    )


def creds(args: argparse.Namespace) -> dict[str, Any] | None:
    """The S3 creds of PATH from ``--endpoint-url`` and ``--profile``."""
    return s3_creds(args, args.path)


def s3_creds(args: argparse.Namespace, url: str) -> dict[str, Any] | None:
    """The creds of ``url`` from ``--endpoint-url`` and ``--profile`` (None unless S3)."""
    if not str(url).startswith("s3://"):
        return None
    found = {"endpoint_url": args.endpoint_url, "profile_name": args.profile}
    return {k: v for k, v in found.items() if v} or None


def open_dataset(args: argparse.Namespace, read_only: bool = True) -> Dataset:
    return load(args.path, read_only=read_only, creds=creds(args))


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=_plain))


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if hasattr(value, "keys"):  # mappings such as ds.info
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def confirm(args: argparse.Namespace, question: str) -> bool:
    """Whether to go on: ``--yes``, else the answer to ``question`` on a terminal; False
    (with a line on stderr saying why) when stdin is no terminal or the answer is no."""
    if getattr(args, "yes", False):
        return True
    if not sys.stdin.isatty():
        print(
            "tensorlake: stdin is not a terminal, so there is no one to confirm; "
            "pass --yes to go ahead",
            file=sys.stderr,
        )
        return False
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() in ("y", "yes"):
        return True
    print("tensorlake: nothing done", file=sys.stderr)
    return False
