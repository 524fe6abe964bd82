"""Where a dataset's versions live on storage, and the state of the checked-out branch.

Keys (see docs/format.md)::

    tensorlake.json              format version, created-at, library version
    refs/heads/<branch>          the branch's head commit id (tiny, rewritten on commit)
    commits/<id>.msgpack         a commit: parent, message, time, author, manifest
    staging/<branch>.msgpack     the branch's uncommitted manifest (rewritten on flush)

A crash at any instant leaves the last stored manifest intact: chunks are always written
before the manifest that names them, and each manifest is a single atomic put.
"""

from __future__ import annotations

import getpass
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from tensorlake.engine.manifest import Manifest, pack, unpack
from tensorlake.errors import (
    DatasetExistsError,
    DatasetNotFoundError,
    FormatError,
    KeyNotFoundError,
)
from tensorlake.storage import Storage

FORMAT_MAJOR = 1
FORMAT_VERSION = f"{FORMAT_MAJOR}.0"
DATASET_META_KEY = "tensorlake.json"
DEFAULT_BRANCH = "main"


def new_commit_id() -> str:
    return secrets.token_hex(20)


def commit_key(commit_id: str) -> str:
    return f"commits/{commit_id}.msgpack"


def ref_key(branch: str) -> str:
    return f"refs/heads/{branch}"


def staging_key(branch: str) -> str:
    return f"staging/{branch}.msgpack"


def user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user database in some containers
        return "unknown"


@dataclass(slots=True)
class Commit:
    """A stored commit's metadata (the manifest is loaded separately)."""

    id: str
    parent: str | None
    message: str | None
    time: float
    author: str
    branch: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Commit:
        return cls(
            **{k: d.get(k) for k in cls.__slots__ if k != "extra"}, extra=d.get("extra") or {}
        )


def dataset_exists(storage: Storage) -> bool:
    return storage.exists(DATASET_META_KEY)


def create_dataset(storage: Storage, library_version: str) -> None:
    """Write the skeleton of an empty dataset: format file, root commit, main branch."""
    if dataset_exists(storage):
        raise DatasetExistsError(
            f"A dataset already exists at {storage.url}. Use tl.load() to open it, or "
            "tl.empty(..., overwrite=True) to replace it."
        )
    root = Commit(new_commit_id(), None, None, time.time(), user_name(), DEFAULT_BRANCH)
    write_commit(storage, root, Manifest())
    storage.put(ref_key(DEFAULT_BRANCH), root.id.encode())
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
        major = int(str(meta["format_version"]).split(".")[0])
    except (ValueError, KeyError, TypeError) as err:
        raise FormatError(f"{DATASET_META_KEY} at {storage.url} is corrupt: {err}") from err
    if major > FORMAT_MAJOR:
        raise FormatError(
            f"The dataset at {storage.url} has format {meta['format_version']}, newer than "
            f"this tensorlake reads ({FORMAT_VERSION}). Upgrade tensorlake."
        )
    return meta


def write_commit(storage: Storage, commit: Commit, manifest: Manifest) -> None:
    storage.put(
        commit_key(commit.id), pack({"commit": commit.to_dict(), "manifest": manifest.to_dict()})
    )


def read_commit(storage: Storage, commit_id: str) -> tuple[Commit, Manifest]:
    raw = unpack(storage.get(commit_key(commit_id)), f"Commit {commit_id}")
    return Commit.from_dict(raw["commit"]), Manifest.from_dict(raw["manifest"])


def read_head(storage: Storage, branch: str) -> str:
    return storage.get(ref_key(branch)).decode().strip()


def read_staging(storage: Storage, branch: str) -> tuple[str, Manifest] | None:
    """The staged manifest of ``branch`` and the commit it was based on, if any."""
    try:
        raw = unpack(storage.get(staging_key(branch)), f"Staging manifest of '{branch}'")
    except KeyNotFoundError:
        return None
    return raw["base"], Manifest.from_dict(raw["manifest"])


def write_staging(storage: Storage, branch: str, base: str, manifest: Manifest) -> None:
    storage.put(staging_key(branch), pack({"base": base, "manifest": manifest.to_dict()}))


def load_branch(storage: Storage, branch: str) -> tuple[str, Manifest]:
    """The head commit id of ``branch`` and its current (staged, else committed) manifest."""
    head = read_head(storage, branch)
    staged = read_staging(storage, branch)
    if staged is not None and staged[0] == head:
        return head, staged[1]
    return head, read_commit(storage, head)[1]
