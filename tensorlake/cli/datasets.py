"""``tensorlake info``: look at a dataset."""

from __future__ import annotations

import argparse
from typing import Any

from tensorlake.api.factory import load

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    info = sub.add_parser("info", help="print a dataset's tensors, htypes and shapes")
    info.add_argument("path", help="dataset path: local directory, s3://bucket/prefix, mem://name")
    info.set_defaults(func=_info)


def _info(args: argparse.Namespace) -> int:
    load(args.path, read_only=True).summary()
    return 0
