"""Where a dataset's versions live on storage, and the state of the checked-out branch.

Keys (see docs/format.md)::

    tensorlake.json              format version, created-at, library version
    refs/heads/<branch>          the branch's head commit id (tiny, rewritten on commit)
    commits/<id>.msgpack         a commit: parent, message, time, author, manifest
    staging/<branch>.msgpack     the branch's uncommitted manifest (rewritten on flush)
    tables/<hash>                a segment of a tensor's chunk table, stored once

A crash at any instant leaves the last stored manifest intact: chunks are always written
before the manifest that names them, and each manifest is a single atomic put.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tensorlake.engine.changes import Changes
from tensorlake.engine.manifest import ChunkTable, Manifest, pack, unpack
from tensorlake.errors import (
    DatasetExistsError,
    DatasetNotFoundError,
    FormatError,
    KeyNotFoundError,
    VersionError,
)
from tensorlake.storage import Storage

FORMAT_MAJOR = 2  # 2: chunk tables stored as segments (1: inline; still read)
FORMAT_VERSION = f"{FORMAT_MAJOR}.0"
DATASET_META_KEY = "tensorlake.json"
DEFAULT_BRANCH = "main"
REFS_PREFIX = "refs/heads/"
COMMITS_PREFIX = "commits/"
STAGING_PREFIX = "staging/"
SEGMENTS_PREFIX = "tables/"
_BRANCH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_COMMIT_ID = re.compile(r"^[0-9a-f]{40}$")


def new_commit_id() -> str:
    return secrets.token_hex(20)


def commit_key(commit_id: str) -> str:
    return f"{COMMITS_PREFIX}{commit_id}.msgpack"


def ref_key(branch: str) -> str:
    return REFS_PREFIX + branch


def staging_key(branch: str) -> str:
    return f"{STAGING_PREFIX}{branch}.msgpack"


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
    write_commit(storage, root, Manifest().to_dict({}), Changes())
    write_head(storage, DEFAULT_BRANCH, root.id)
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


class ManifestStore:
    """Reads and writes manifests, storing each chunk-table segment once under its hash."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._stored: set[str] = set()  # segment keys known to exist

    def save(self, manifest: Manifest) -> dict[str, Any]:
        """Store the segments not stored yet; return the manifest's stored form."""
        new, stored = self.plan(manifest)
        self.put_segments(new)
        return stored

    def plan(self, manifest: Manifest) -> tuple[dict[str, bytes], dict[str, Any]]:
        """The segments ``manifest`` needs that are not stored yet, and its stored form
        (what ``save`` does, without the puts)."""
        segments: dict[str, list[str]] = {}
        new: dict[str, bytes] = {}
        for name, state in manifest.tensors.items():
            keys = []
            for part in state.table.segments():
                key = segment_key(part)
                if key not in self._stored:
                    new[key] = part
                keys.append(key)
            segments[name] = keys
        return new, manifest.to_dict(segments)

    def put_segments(self, new: dict[str, bytes]) -> None:
        # usually one segment per changed tensor: stored side by side, since each put
        # waits on storage (an fsync, a round trip)
        if len(new) > 1:
            with ThreadPoolExecutor(min(8, len(new))) as pool:
                list(pool.map(lambda item: self.storage.put(*item), new.items()))
        else:
            for key, part in new.items():
                self.storage.put(key, part)
        self._stored.update(new)

    def load(self, d: dict[str, Any]) -> Manifest:
        if any("chunks" in t for t in d.get("tensors", ())):  # format 1: tables inline
            tables = {t["meta"]["name"]: ChunkTable.from_dict(t["chunks"]) for t in d["tensors"]}
            return Manifest.from_dict(d, tables)
        keys = Manifest.segment_keys(d)
        wanted = sorted({k for ks in keys.values() for k in ks})
        try:
            parts = dict(self.storage.get_many(wanted))
        except KeyNotFoundError as err:
            raise FormatError(
                f"A manifest at {self.storage.url} names a missing table segment ({err.key}).",
                key=err.key,
            ) from err
        self._stored.update(parts)
        tables = {
            name: ChunkTable.from_segments([parts[k] for k in ks], f"Table segment of '{name}'")
            for name, ks in keys.items()
        }
        return Manifest.from_dict(d, tables)


def segment_key(part: bytes) -> str:
    return SEGMENTS_PREFIX + hashlib.blake2b(part, digest_size=16).hexdigest()


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
    storage.put(commit_key(commit.id), commit_bytes(commit, manifest, changes))


def commit_bytes(commit: Commit, manifest: dict[str, Any], changes: Changes) -> bytes:
    """A commit object as stored."""
    obj = {"commit": commit.to_dict(), "manifest": manifest, "changes": changes.to_dict()}
    return pack(obj)


def read_commit(storage: Storage, commit_id: str) -> StoredVersion:
    try:
        raw = unpack(storage.get(commit_key(commit_id)), f"Commit {commit_id}")
    except KeyNotFoundError:
        raise VersionError(f"Commit {commit_id} is missing from {storage.url}.") from None
    return StoredVersion(
        raw["manifest"], Changes.from_dict(raw.get("changes")), Commit.from_dict(raw["commit"])
    )


def read_head(storage: Storage, branch: str) -> str:
    try:
        return storage.get(ref_key(branch)).decode().strip()
    except KeyNotFoundError:
        raise VersionError(
            f"No branch '{branch}' in {storage.url}. Branches: {list_branches(storage)}."
        ) from None


def write_head(storage: Storage, branch: str, commit_id: str) -> None:
    storage.put(ref_key(branch), commit_id.encode())


def list_branches(storage: Storage) -> list[str]:
    return [k[len(REFS_PREFIX) :] for k in storage.list(REFS_PREFIX)]


def read_staging(storage: Storage, branch: str) -> StoredVersion | None:
    """The staged (uncommitted) state of ``branch``, if any was flushed."""
    try:
        raw = unpack(storage.get(staging_key(branch)), f"Staging manifest of '{branch}'")
    except KeyNotFoundError:
        return None
    return StoredVersion(raw["manifest"], Changes.from_dict(raw.get("changes")), base=raw["base"])


def write_staging(
    storage: Storage, branch: str, base: str, manifest: dict[str, Any], changes: Changes
) -> None:
    obj = {"base": base, "manifest": manifest, "changes": changes.to_dict()}
    storage.put(staging_key(branch), pack(obj))


def delete_staging(storage: Storage, branch: str) -> None:
    storage.delete(staging_key(branch))


def current_staging(storage: Storage, branch: str, head: str) -> StoredVersion | None:
    """The branch's staging state if it continues ``head`` (a crash mid-commit can leave
    one based on the previous head, which is obsolete)."""
    staged = read_staging(storage, branch)
    return staged if staged is not None and staged.base == head else None


def check_branch_name(name: str) -> None:
    if not isinstance(name, str) or not _BRANCH.match(name) or _COMMIT_ID.match(name):
        raise VersionError(
            f"Invalid branch name {name!r}: use letters, digits, '_', '-', '.' (no '/'), "
            "and not 40 hex digits (that is a commit id)."
        )


def resolve_ref(storage: Storage, ref: str) -> tuple[str | None, str]:
    """``(branch, commit_id)`` for a branch name, or ``(None, id)`` for a commit id or a
    unique prefix of one (at least 6 hex digits)."""
    if not isinstance(ref, str) or not ref:
        raise VersionError(f"A version is a branch name or a commit id, got {ref!r}.")
    if "/" not in ref and storage.exists(ref_key(ref)):
        return ref, read_head(storage, ref)
    if re.fullmatch(r"[0-9a-f]{6,40}", ref):
        if len(ref) == 40 and storage.exists(commit_key(ref)):
            return None, ref
        found = [
            k[len(COMMITS_PREFIX) : -len(".msgpack")] for k in storage.list(COMMITS_PREFIX + ref)
        ]
        if len(found) == 1:
            return None, found[0]
        if len(found) > 1:
            raise VersionError(f"'{ref}' matches {len(found)} commits; give more digits.")
    raise VersionError(
        f"No branch or commit '{ref}' in {storage.url}. Branches: {list_branches(storage)}; "
        "see ds.log() for commit ids."
    )


def list_commit_ids(storage: Storage) -> list[str]:
    return [k[len(COMMITS_PREFIX) : -len(".msgpack")] for k in storage.list(COMMITS_PREFIX)]
