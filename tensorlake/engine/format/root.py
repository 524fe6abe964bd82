"""The dataset's root object, ``tensorlake.json``: it makes a prefix a dataset and
names the format version, which a reader checks before anything else."""

from __future__ import annotations

import json
import time
from typing import Any

from tensorlake.engine.format import records
from tensorlake.engine.format.changes import Changes
from tensorlake.engine.format.keys import DATASET_META_KEY
from tensorlake.engine.format.manifest import Manifest
from tensorlake.errors import (
    DatasetExistsError,
    DatasetNotFoundError,
    FormatError,
    KeyNotFoundError,
)
from tensorlake.storage import Storage

__all__ = ["FORMAT_MAJOR", "FORMAT_VERSION", "check_format", "create_dataset", "dataset_exists"]

FORMAT_MAJOR = 2  # 2: chunk tables stored as segments (1: inline; still read)
FORMAT_VERSION = f"{FORMAT_MAJOR}.0"


def dataset_exists(storage: Storage) -> bool:
    return storage.exists(DATASET_META_KEY)


def create_dataset(storage: Storage, library_version: str) -> None:
    """Write the skeleton of an empty dataset: format file, root commit, main branch."""
    if dataset_exists(storage):
        raise DatasetExistsError(
            f"A dataset already exists at {storage.url}. Use tl.load() to open it, or "
            "tl.empty(..., overwrite=True) to replace it."
        )
    root = records.Commit(
        records.new_commit_id(),
        None,
        None,
        time.time(),
        records.user_name(),
        records.DEFAULT_BRANCH,
    )
    records.write_commit(storage, root, Manifest().to_dict({}), Changes())
    records.write_head(storage, records.DEFAULT_BRANCH, root.id)
    meta = {
        "format_version": FORMAT_VERSION,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "library_version": library_version,
    }
    storage.put(DATASET_META_KEY, json.dumps(meta, indent=2).encode())


def check_format(storage: Storage) -> dict[str, Any]:
    try:
        raw = storage.get(DATASET_META_KEY)
    except KeyNotFoundError:
        raise DatasetNotFoundError(
            f"No dataset at {storage.url}. Create one with tl.empty() or tl.dataset()."
        ) from None
    try:
        meta = json.loads(raw)
        version = meta["format_version"]
        if not isinstance(version, str | int) or isinstance(version, bool):
            raise TypeError(f"format_version is {version!r}")
        major = int(str(version).split(".")[0])
        if major < 1:
            raise ValueError(f"format_version is {version!r}")
    except (ValueError, KeyError, TypeError, RecursionError) as err:  # JSON and Unicode too
        raise FormatError(
            f"{DATASET_META_KEY} at {storage.url} is corrupt: {str(err)[:200]}. It names the "
            "dataset's format version; restore it (any copy of this dataset's) to read it.",
            key=DATASET_META_KEY,
        ) from err
    if major > FORMAT_MAJOR:
        raise FormatError(
            f"The dataset at {storage.url} ({DATASET_META_KEY}) has format {version}, newer than "
            f"this tensorlake reads ({FORMAT_VERSION}). Upgrade tensorlake.",
            key=DATASET_META_KEY,
        )
    return meta
