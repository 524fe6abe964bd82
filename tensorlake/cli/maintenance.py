"""``tensorlake verify | gc | lock status | lock break``: the stored objects of a dataset."""

from __future__ import annotations

import argparse
import sys
from contextlib import closing
from typing import Any

from tensorlake.api.factory import break_lock, exists
from tensorlake.cli.options import (
    add_json,
    add_path,
    add_yes,
    command,
    confirm,
    creds,
    layout,
    open_dataset,
    print_json,
)
from tensorlake.engine.lock import inspect_lock
from tensorlake.errors import DatasetNotFoundError
from tensorlake.storage import from_url

__all__ = ["add_parser"]

_KINDS = {"segments": "table segments", "staging": "staging objects", "temp_files": "temp files"}
"""How ``gc`` prints the kinds of objects ``ds.gc()`` counts (others: as they are)."""


def add_parser(sub: Any) -> None:
    verify = command(
        sub,
        "verify",
        "check that every object the dataset's versions need is there and intact",
        [
            "tensorlake verify ./coco",
            "tensorlake verify s3://bucket/coco --links --json --profile prod",
        ],
        description=(
            "Read every commit, staging manifest, chunk-table segment and chunk that a "
            "branch or a commit before it needs, and check sizes and checksums; --links "
            "also checks that every linked object exists. Prints what was checked and each "
            "damaged or missing object by its key; exits with 1 when anything is damaged. "
            "Run it while nobody writes the dataset."
        ),
    )
    add_path(verify, help="the dataset: a local directory, s3://bucket/prefix or mem://name")
    verify.add_argument(
        "--links", action="store_true", help="also check that every linked object exists"
    )
    add_json(verify)
    verify.add_argument("--no-progress", action="store_true", help="show no progress bar")
    verify.set_defaults(func=_verify)

    gc = command(
        sub,
        "gc",
        "delete the stored objects no version uses",
        ["tensorlake gc ./coco", "tensorlake gc s3://bucket/coco --json"],
        description=(
            "Delete the chunks, table segments, commits and staging objects that no branch "
            "reaches (left by crashes, resets and deleted branches); prints how many of "
            "each. Takes the writer lock."
        ),
    )
    add_path(gc, help="the dataset: a local directory, s3://bucket/prefix or mem://name")
    add_json(gc)
    gc.set_defaults(func=_gc)

    lock = sub.add_parser(
        "lock",
        help="show or break a dataset's writer lock",
        **layout(
            "Show who holds a dataset's writer lock, or remove a lock left behind.",
            ["tensorlake lock status ./coco", "tensorlake lock break ./coco"],
        ),
    )
    actions = lock.add_subparsers(dest="action", metavar="ACTION", required=True)
    status = command(
        actions,
        "status",
        "show who holds the writer lock, and whether it is stale",
        ["tensorlake lock status ./coco", "tensorlake lock status s3://bucket/coco --json"],
    )
    add_path(status, help="the dataset: a local directory, s3://bucket/prefix or mem://name")
    add_json(status)
    status.set_defaults(func=_lock_status)
    remove = command(
        actions,
        "break",
        "remove the writer lock, whoever holds it",
        ["tensorlake lock break ./coco", "tensorlake lock break s3://bucket/coco --yes"],
        description=(
            "Remove the writer lock of a writer that is gone. A stale lock (its process "
            "gone, or its heartbeat older than its lease) is removed at once; a lock that "
            "looks live is removed only once confirmed (or with --yes): breaking a live "
            "writer's lock lets two processes write at once."
        ),
    )
    add_path(remove, help="the dataset: a local directory, s3://bucket/prefix or mem://name")
    add_yes(remove)
    remove.set_defaults(func=_lock_break)


def _verify(args: argparse.Namespace) -> int:
    ds = open_dataset(args)
    show = not args.no_progress and not args.json and sys.stderr.isatty()
    report = ds.verify(links=args.links, progressbar=show)
    if args.json:
        print_json(report.to_dict())
    else:
        print(report)
    return 0 if report.ok else 1


def _gc(args: argparse.Namespace) -> int:
    with closing(open_dataset(args, read_only=False)) as ds:
        counts = ds.gc()
    if args.json:
        print_json(counts)
    else:
        shown = {k: n for k, n in counts.items() if n or k != "temp_files"}  # rare: if any
        print("deleted " + ", ".join(f"{n} {_KINDS.get(k, k)}" for k, n in shown.items()))
    return 0


def _lock(args: argparse.Namespace) -> dict[str, Any] | None:
    """The lock as ``lock status --json`` prints it; None when there is none."""
    if not exists(args.path, creds=creds(args)):
        raise DatasetNotFoundError(f"No dataset at {args.path}.")
    found = inspect_lock(from_url(args.path, creds=creds(args), read_only=True))
    if found is None:
        return None
    holder, stale = found
    return {
        "holder": holder.as_dict() if holder is not None else None,
        "describe": holder.describe() if holder is not None else "an unreadable lock object",
        "stale": stale,
    }


def _lock_status(args: argparse.Namespace) -> int:
    lock = _lock(args)
    if args.json:
        found = lock or {"holder": None, "stale": None}
        print_json({"locked": lock is not None, "holder": found["holder"], "stale": found["stale"]})
    elif lock is None:
        print(f"{args.path}: not locked")
    else:
        state = f"stale: {lock['stale']}" if lock["stale"] else "live"
        print(f"{args.path}: locked by {lock['describe']} ({state})")
    return 0


def _lock_break(args: argparse.Namespace) -> int:
    lock = _lock(args)
    if lock is None:
        print(f"{args.path}: not locked")
        return 0
    if lock["stale"] is None and not confirm(
        args,
        f"{args.path} is locked by {lock['describe']}, which may still be writing. Break its lock?",
    ):
        return 1
    break_lock(args.path, creds=creds(args))
    print(f"{args.path}: removed the writer lock of {lock['describe']}")
    return 0
