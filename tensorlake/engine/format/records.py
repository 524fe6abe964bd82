"""The stored objects of version control: commits, staging states and branch heads.

Each is one atomic put, so a crash at any instant leaves the last stored one intact:
chunks are always written before the manifest that names them (see docs/format.md,
"Write order and crash safety"). What the objects mean (commit, checkout, reset) is in
``engine/version/``; this module only reads and writes them.
"""

from __future__ import annotations

import getpass
import math
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tensorlake.engine.format import keys
from tensorlake.engine.format.changes import Changes
from tensorlake.engine.format.chunk_table import ChunkTable
from tensorlake.engine.format.manifest import Manifest, TensorMeta
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
        """The commit a stored map describes; ``TypeError`` / ``ValueError`` if a field has
        the wrong type (absent fields take their defaults, as in older commits)."""
        if not isinstance(d, dict):
            raise TypeError(f"the commit record is a {type(d).__name__}, not a map")
        when = d.get("time") or 0.0
        if not isinstance(when, int | float) or isinstance(when, bool):
            raise TypeError(f"commit time {when!r}")
        if not math.isfinite(when):
            raise ValueError(f"commit time {when!r}")
        return cls(
            _text(d.get("id") or "", "id"),
            _optional_text(d.get("parent"), "parent"),
            _optional_text(d.get("message"), "message"),
            float(when),
            _text(d.get("author") or "unknown", "author"),
            _text(d.get("branch") or DEFAULT_BRANCH, "branch"),
            _map(d.get("extra") or {}, "extra"),
        )


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} is {value!r}, not a string")
    return value


def _optional_text(value: Any, name: str) -> str | None:
    return None if value is None else _text(value, name)


def _map(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{name} is {value!r}, not a map")
    return value


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
    return _decode_version(data, f"Commit {commit_id}", keys.commit_key(commit_id), staging=False)


_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, OverflowError)
"""What reading the fields of a decoded record raises when it is not the record expected."""


def _decode_version(data: bytes, what: str, key: str, *, staging: bool) -> StoredVersion:
    """A commit or staging object from its stored bytes, every field checked: a value of
    the right types or a ``FormatError`` naming ``key`` (neither object has a checksum)."""
    raw = unpack(data, what, key)
    try:
        if not isinstance(raw, dict):
            raise TypeError(f"the object is a {type(raw).__name__}, not a map")
        manifest = _map(raw["manifest"], "manifest")
        _check_manifest(manifest)
        changes = Changes.from_dict(raw.get("changes"))
        if staging:
            return StoredVersion(manifest, changes, base=_text(raw["base"], "base"))
        return StoredVersion(manifest, changes, Commit.from_dict(raw["commit"]))
    except _MALFORMED as err:  # decodes, but is no commit or staging object
        raise FormatError(f"{what} ({key}) is malformed: {err!r}", key=key) from err
    except FormatError as err:  # e.g. a manifest format newer than this tensorlake's
        raise FormatError(f"{what} ({key}): {err}", key=key) from err


def _check_manifest(d: dict[str, Any]) -> None:
    """What the reader takes from a stored manifest has the types it expects (a commit has
    no checksum: damage that still decodes must fail here, naming the commit, not later
    as a ``KeyError`` or a numpy error). Raises what ``_MALFORMED`` lists."""
    for t in Manifest.tables(d):
        _text(t.name, "tensor name")
        _text(t.chunks_name, "storage name")
        for seg in (*t.segments, *t.index):
            if not isinstance(seg, str) or not seg.startswith(keys.SEGMENTS_PREFIX):
                raise ValueError(f"table segment {seg!r} of {t.name!r}")
        if t.inline is not None:
            ChunkTable.from_dict(t.inline)
    for t in d["tensors"]:
        meta = TensorMeta.from_dict(_map(t["meta"], "meta"))
        if meta.dtype is not None and _text(meta.dtype, "dtype") not in ("json", "str"):
            np.dtype(meta.dtype)  # json and text tensors name no numpy dtype
        for name in ("htype", "name"):
            _text(getattr(meta, name), name)
        for name in ("sample_compression", "chunk_compression"):
            _optional_text(getattr(meta, name), name)
        for name in ("length", "max_chunk_size"):
            value = getattr(meta, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} {value!r} of {meta.name!r}")
        for shape in (meta.min_shape, meta.max_shape):
            if shape is not None and not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
            ):
                raise ValueError(f"shape {shape!r} of {meta.name!r}")
        _map(meta.info, "info")
        _map(meta.extra, "extra")
    _map(d.get("info") or {}, "info")
    _map(d.get("settings") or {}, "settings")
    for name in ("groups", "creds_keys"):
        listed = d.get(name) or []
        if not isinstance(listed, list) or not all(isinstance(v, str) for v in listed):
            raise TypeError(f"{name} {listed!r}")


def read_head(storage: Storage, branch: str) -> str:
    """The commit id ``branch`` points to; ``FormatError`` naming the ref if it holds no id."""
    key = keys.ref_key(branch)
    try:
        data = storage.get(key)
    except KeyNotFoundError:
        raise VersionError(
            f"No branch '{branch}' in {storage.url}. Branches: {list_branches(storage)}."
        ) from None
    head = data.decode("ascii", "replace").strip()
    if not _COMMIT_ID.match(head):
        raise FormatError(
            f"The head of branch '{branch}' ({key}) is corrupt: {data[:60]!r} is not a "
            "commit id. Point it at a commit again (ds.checkout(commit_id) then a new "
            "branch), or restore the object.",
            key=key,
        )
    return head


_COMMIT_ID = re.compile(r"^[0-9A-Za-z_.\-]{1,128}$")
"""What a stored branch head may hold (``new_commit_id`` makes 40 hex digits)."""


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
    key = keys.staging_key(branch)
    try:
        data = storage.get(key)
    except KeyNotFoundError:
        return None
    return _decode_version(data, f"Staging manifest of '{branch}'", key, staging=True)


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
