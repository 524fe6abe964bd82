"""The stored objects of version control: commits, staging states and branch heads.

Each is one atomic put, so a crash at any instant leaves the last stored one intact:
chunks are always written before the manifest that names them (see docs/format.md,
"Write order and crash safety"). What the objects mean (commit, checkout, reset) is in
``engine/version/``; this module only reads and writes them.
"""

from __future__ import annotations

import getpass
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from tensorlake.engine.format import keys
from tensorlake.engine.format.changes import Changes
from tensorlake.engine.format.packing import pack, unpack
from tensorlake.errors import FormatError, KeyNotFoundError, VersionError
from tensorlake.storage import Storage

__all__ = [
    "DEFAULT_BRANCH",
    "Commit",
    "StoredVersion",
    "commit_bytes",
    "create_branch",
    "current_staging",
    "decode_commit",
    "delete_branch",
    "delete_staging",
    "list_branches",
    "list_commit_ids",
    "new_commit_id",
    "read_commit",
    "read_head",
    "read_staging",
    "user_name",
    "write_commit",
    "write_head",
    "write_staging",
]

DEFAULT_BRANCH = "main"

_CREATED_PREFIX = "refs/created/"
"""``refs/created/<branch>``: when the branch was created (nanoseconds since the epoch,
ASCII), the order ``list_branches`` gives; beside ``keys.REFS_PREFIX``."""


def _created_key(branch: str) -> str:
    return _CREATED_PREFIX + branch


def new_commit_id() -> str:
    return secrets.token_hex(20)


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
            d.get("id") or "",
            d.get("parent"),
            d.get("message"),
            d.get("time") or 0.0,
            d.get("author") or "unknown",
            d.get("branch") or DEFAULT_BRANCH,
            d.get("extra") or {},
        )


@dataclass(slots=True)
class StoredVersion:
    """A commit or staging object as stored: the manifest still in its stored form."""

    manifest: dict[str, Any]
    changes: Changes
    commit: Commit | None = None  # for commits
    base: str | None = None  # for staging: the commit it continues


def write_commit(
    storage: Storage, commit: Commit, manifest: dict[str, Any], changes: Changes
) -> None:
    storage.put(keys.commit_key(commit.id), commit_bytes(commit, manifest, changes))


def commit_bytes(commit: Commit, manifest: dict[str, Any], changes: Changes) -> bytes:
    """A commit object as stored."""
    obj = {"commit": commit.to_dict(), "manifest": manifest, "changes": changes.to_dict()}
    return pack(obj)


def read_commit(storage: Storage, commit_id: str) -> StoredVersion:
    try:
        data = storage.get(keys.commit_key(commit_id))
    except KeyNotFoundError:
        raise VersionError(f"Commit {commit_id} is missing from {storage.url}.") from None
    return decode_commit(data, commit_id)


def decode_commit(data: bytes, commit_id: str) -> StoredVersion:
    """A commit object from its stored bytes; ``FormatError`` if it does not decode."""
    what = f"Commit {commit_id}"
    raw = unpack(data, what)
    try:
        return StoredVersion(
            raw["manifest"], Changes.from_dict(raw.get("changes")), Commit.from_dict(raw["commit"])
        )
    except (KeyError, TypeError, AttributeError) as err:  # decodes, but is no commit object
        raise FormatError(f"{what} is malformed: {err!r}", key=keys.commit_key(commit_id)) from err


def read_head(storage: Storage, branch: str) -> str:
    try:
        return storage.get(keys.ref_key(branch)).decode().strip()
    except KeyNotFoundError:
        raise VersionError(
            f"No branch '{branch}' in {storage.url}. Branches: {list_branches(storage)}."
        ) from None


def write_head(storage: Storage, branch: str, commit_id: str) -> None:
    storage.put(keys.ref_key(branch), commit_id.encode())


def create_branch(storage: Storage, branch: str, commit_id: str) -> None:
    """Start ``branch`` at ``commit_id``: its creation time (``refs/created/<branch>``,
    nanoseconds as ASCII), then its head. A crash between the two leaves a record
    without a branch, which ``list_branches`` ignores and the next creation replaces."""
    storage.put(_created_key(branch), str(time.time_ns()).encode())
    write_head(storage, branch, commit_id)


def delete_branch(storage: Storage, branch: str) -> None:
    """Remove ``branch``'s head (the branch is gone from then on), then its creation time."""
    storage.delete(keys.ref_key(branch))
    storage.delete(_created_key(branch))


def list_branches(storage: Storage) -> list[str]:
    """The branches in the order they were created, ``main`` first, as Deep Lake lists
    them. Branches without a creation time (made before tensorlake recorded it, or
    pulled from a registry) come after ``main``, by name."""
    names = [k[len(keys.REFS_PREFIX) :] for k in storage.list(keys.REFS_PREFIX)]
    if len(names) < 2:
        return names
    present = set(names)
    recorded = [k for k in storage.list(_CREATED_PREFIX) if k[len(_CREATED_PREFIX) :] in present]
    created = {
        k[len(_CREATED_PREFIX) :]: _created_ns(data) for k, data in storage.get_many(recorded)
    }
    return sorted(names, key=lambda b: (b != DEFAULT_BRANCH, created.get(b, 0), b))


def _created_ns(data: bytes) -> int:
    try:
        return int(data)
    except ValueError:  # a damaged record: ordered as if it had none
        return 0


def read_staging(storage: Storage, branch: str) -> StoredVersion | None:
    """The staged (uncommitted) state of ``branch``, if any was flushed."""
    what = f"Staging manifest of '{branch}'"
    try:
        raw = unpack(storage.get(keys.staging_key(branch)), what)
    except KeyNotFoundError:
        return None
    try:
        return StoredVersion(
            raw["manifest"], Changes.from_dict(raw.get("changes")), base=raw["base"]
        )
    except (KeyError, TypeError, AttributeError) as err:
        raise FormatError(f"{what} is malformed: {err!r}", key=keys.staging_key(branch)) from err


def write_staging(
    storage: Storage, branch: str, base: str, manifest: dict[str, Any], changes: Changes
) -> None:
    obj = {"base": base, "manifest": manifest, "changes": changes.to_dict()}
    storage.put(keys.staging_key(branch), pack(obj))


def delete_staging(storage: Storage, branch: str) -> None:
    storage.delete(keys.staging_key(branch))


def current_staging(storage: Storage, branch: str, head: str) -> StoredVersion | None:
    """The branch's staging state if it continues ``head`` (a crash mid-commit can leave
    one based on the previous head, which is obsolete)."""
    staged = read_staging(storage, branch)
    return staged if staged is not None and staged.base == head else None


def list_commit_ids(storage: Storage) -> list[str]:
    return [keys.commit_id_of(k) for k in storage.list(keys.COMMITS_PREFIX)]
