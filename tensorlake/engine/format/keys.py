"""Every storage key a dataset uses, built in this one module.

::

    tensorlake.json              format version, created-at, library version
    refs/heads/<branch>          the branch's head commit id (tiny, rewritten on commit)
    commits/<id>.msgpack         a commit: parent, message, time, author, manifest
    staging/<branch>.msgpack     the branch's uncommitted manifest (rewritten on flush)
    tables/<hash>                a segment of a tensor's chunk table, stored once
    tensors/<tensor>/chunks/<id> a chunk: rows of one tensor, never rewritten
    lock, lock.takeover          the writer lock and the guard of its takeover
    garbage/<time>-<id>.msgpack  objects no manifest names any more, and since when
    views/<id>.msgpack           a saved view: its rows and the commit it was taken at
    views/<id>/...               an optimized saved view: a dataset of its own, nested

See docs/format.md.
"""

from __future__ import annotations

import hashlib

__all__ = [
    "COMMITS_PREFIX",
    "DATASET_META_KEY",
    "GARBAGE_PREFIX",
    "LOCK_KEY",
    "REFS_PREFIX",
    "SEGMENTS_PREFIX",
    "STAGING_PREFIX",
    "TAKEOVER_KEY",
    "TENSORS_PREFIX",
    "VIEWS_PREFIX",
    "chunk_key",
    "chunk_name",
    "chunk_prefix",
    "commit_id_of",
    "commit_key",
    "garbage_key",
    "is_chunk_key",
    "ref_key",
    "segment_key",
    "staging_key",
    "view_data_prefix",
    "view_id_of",
    "view_key",
]

DATASET_META_KEY = "tensorlake.json"
REFS_PREFIX = "refs/heads/"
COMMITS_PREFIX = "commits/"
STAGING_PREFIX = "staging/"
SEGMENTS_PREFIX = "tables/"
TENSORS_PREFIX = "tensors/"
VIEWS_PREFIX = "views/"
GARBAGE_PREFIX = "garbage/"
LOCK_KEY = "lock"
"""The key of the writer lock object, at the dataset root."""
TAKEOVER_KEY = "lock.takeover"
_COMMIT_SUFFIX = ".msgpack"


def commit_key(commit_id: str) -> str:
    return f"{COMMITS_PREFIX}{commit_id}{_COMMIT_SUFFIX}"


def commit_id_of(key: str) -> str:
    """The commit id a ``commit_key`` names."""
    return key[len(COMMITS_PREFIX) : -len(_COMMIT_SUFFIX)]


def garbage_key(name: str) -> str:
    """A garbage record (``engine/core/garbage.py``): superseded objects and their times."""
    return f"{GARBAGE_PREFIX}{name}{_COMMIT_SUFFIX}"


def ref_key(branch: str) -> str:
    return REFS_PREFIX + branch


def staging_key(branch: str) -> str:
    return f"{STAGING_PREFIX}{branch}.msgpack"


def segment_key(part: bytes) -> str:
    """Table segments are content-addressed: stored once, whichever versions name them."""
    return SEGMENTS_PREFIX + hashlib.blake2b(part, digest_size=16).hexdigest()


def chunk_prefix(tensor: str) -> str:
    return f"{TENSORS_PREFIX}{tensor}/chunks/"


def chunk_name(chunk_id: int) -> str:
    return f"{chunk_id:016x}"


def chunk_key(tensor: str, chunk_id: int) -> str:
    return chunk_prefix(tensor) + chunk_name(chunk_id)


def is_chunk_key(key: str) -> bool:
    return key.startswith(TENSORS_PREFIX) and "/chunks/" in key


def view_key(view_id: str) -> str:
    return f"{VIEWS_PREFIX}{view_id}{_COMMIT_SUFFIX}"


def view_id_of(key: str) -> str | None:
    """The id a ``view_key`` names (None for other keys under ``views/``)."""
    rest = key[len(VIEWS_PREFIX) :]
    if "/" in rest or not rest.endswith(_COMMIT_SUFFIX):
        return None
    return rest[: -len(_COMMIT_SUFFIX)]


def view_data_prefix(view_id: str) -> str:
    """Where an optimized view's own dataset lives, under the dataset's root."""
    return f"{VIEWS_PREFIX}{view_id}/"
