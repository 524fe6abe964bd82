"""``tensorlake info`` and ``tensorlake delete``: look at a dataset, or remove it."""

from __future__ import annotations

import argparse
from typing import Any

from tensorlake.api.dataset import Dataset
from tensorlake.api.factory import delete, exists
from tensorlake.cli.options import (
    add_json,
    add_path,
    add_yes,
    command,
    confirm,
    creds,
    open_dataset,
    print_json,
)
from tensorlake.errors import DatasetNotFoundError

__all__ = ["add_parser", "describe"]


def add_parser(sub: Any) -> None:
    info = command(
        sub,
        "info",
        "print a dataset's tensors, htypes and shapes",
        [
            "tensorlake info ./coco",
            "tensorlake info s3://bucket/coco@dev --endpoint-url http://localhost:9000",
            "tensorlake info ./coco --json | jq '.tensors[].name'",
        ],
    )
    add_path(info)
    add_json(info)
    info.set_defaults(func=_info)
    remove = command(
        sub,
        "delete",
        "delete a dataset: every object under PATH, every version",
        ["tensorlake delete ./scratch", "tensorlake delete s3://bucket/old --yes"],
        description=(
            "Delete the dataset at PATH: every branch, commit and chunk. Asks first on a "
            "terminal; elsewhere (a script, a pipe) it refuses unless --yes is given. A "
            "dataset another process is writing is refused (its writer lock)."
        ),
    )
    add_path(remove, help="the dataset: a local directory, s3://bucket/prefix or mem://name")
    add_yes(remove)
    remove.set_defaults(func=_delete)


def describe(ds: Dataset) -> dict[str, Any]:
    """What ``info --json`` prints: the version, its rows and every tensor."""
    return {
        "path": ds.path,
        "branch": ds.branch,
        "commit": ds.commit_id,
        "rows": len(ds),
        "max_rows": ds.max_len,
        "tensors": [
            {
                "name": name,
                "htype": t.htype,
                "dtype": None if t.meta.dtype is None else str(t.meta.dtype),
                "shape": list(t.shape),
                "length": len(t),
                "sample_compression": t.sample_compression,
                "chunk_compression": t.chunk_compression,
            }
            for name, t in ds.tensors.items()
        ],
        "groups": sorted(ds.groups),
        "info": dict(ds.info),
    }


def _info(args: argparse.Namespace) -> int:
    ds = open_dataset(args)
    if args.json:
        print_json(describe(ds))
    else:
        ds.summary()
    return 0


def _delete(args: argparse.Namespace) -> int:
    if not exists(args.path, creds=creds(args)):
        raise DatasetNotFoundError(f"No dataset at {args.path} to delete.")
    if not confirm(args, f"Delete the dataset at {args.path}, every version of it?"):
        return 1
    delete(args.path, creds=creds(args))
    print(f"deleted {args.path}")
    return 0
