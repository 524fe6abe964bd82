"""The remote: named, versioned datasets under one root on any S3-compatible bucket
(or a local folder).

::

    versions/<name>/<n:08d>.msgpack   version n of <name>: its index, written last and
                                      only once (a conditional write)
    datasets/<name>/<key>             the dataset's objects, under their own keys
    files/<hash>                      extra files (README.md, assets/...), by content

A dataset's objects never change once written (chunks, table segments and commits are
immutable; see docs/format.md), so a key names one content for good: a push uploads the
keys the remote lacks, and the index of each version lists, with its size and BLAKE2b
hash, every object that version adds. A pull checks each object it downloads against
that hash. A version is visible only once its index exists, and its index is written
after every object it needs: an interrupted push publishes nothing (its objects are
kept, and the next push does not send them again).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tensorlake import config
from tensorlake.engine.format.packing import pack, unpack
from tensorlake.errors import ConfigError, FormatError, KeyNotFoundError, StorageError
from tensorlake.storage import Storage, from_url

__all__ = ["INDEX_FORMAT", "Remote", "Version", "digest", "merged_objects", "version_key"]

INDEX_FORMAT = "tensorlake.registry/1"
VERSIONS_PREFIX = "versions/"
_VERSION_KEY = re.compile(r"^versions/([a-z0-9][a-z0-9_-]*)/(\d{8})\.msgpack$")


def digest(data: bytes | memoryview) -> str:
    """The hash every object is checked against: BLAKE2b-128, hex."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass
class Version:
    """One published version of a dataset: what its index object holds."""

    name: str
    number: int
    commit: str
    branch: str
    time: float
    author: str
    summary: dict[str, Any]
    objects: dict[str, tuple[int, str]] = field(default_factory=dict)
    """The objects this version adds: key -> (size, hash)."""
    files: dict[str, tuple[int, str]] = field(default_factory=dict)
    """The version's extra files: path -> (size, hash)."""

    def to_bytes(self) -> bytes:
        return pack(
            {
                "format": INDEX_FORMAT,
                "name": self.name,
                "number": self.number,
                "commit": self.commit,
                "branch": self.branch,
                "time": self.time,
                "author": self.author,
                "summary": self.summary,
                "objects": {k: list(v) for k, v in self.objects.items()},
                "files": {k: list(v) for k, v in self.files.items()},
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes, where: str, key: str | None = None) -> Version:
        """The version an index object holds, every field checked; ``FormatError``
        (naming ``where``, the index's address, and carrying ``key``) otherwise."""
        key = where if key is None else key
        raw = unpack(data, where, key)
        if not isinstance(raw, dict) or raw.get("format") != INDEX_FORMAT:
            raise FormatError(
                f"{where} is not a tensorlake registry index ({INDEX_FORMAT}): "
                "the remote holds something else, or was written by a newer tensorlake.",
                key=key,
            )
        try:
            when = raw["time"]
            if not isinstance(when, int | float) or isinstance(when, bool):
                raise TypeError(f"time {when!r}")
            if not math.isfinite(when):
                raise ValueError(f"time {when!r}")
            summary = raw["summary"]
            if not isinstance(summary, dict):
                raise TypeError(f"summary {summary!r}")
            return cls(
                name=_text(raw["name"], "name"),
                number=_count(raw["number"], "number"),
                commit=_text(raw["commit"], "commit"),
                branch=_text(raw["branch"], "branch"),
                time=float(when),
                author=_text(raw["author"], "author"),
                summary=summary,
                objects=_listing(raw["objects"], "objects"),
                files=_listing(raw["files"], "files"),
            )
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
            raise FormatError(
                f"{where} is a damaged registry index ({err!r}). Push the version again "
                "to repair it.",
                key=key,
            ) from err

    def describe(self) -> dict[str, Any]:
        """What ``ls --remote`` shows of it."""
        return {
            "version": self.number,
            "commit": self.commit,
            "branch": self.branch,
            "time": self.time,
            "author": self.author,
            **self.summary,
        }


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} {value!r} is not a string")
    return value


def _count(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} {value!r} is not a count")
    return value


def _listing(value: Any, name: str) -> dict[str, tuple[int, str]]:
    """``{key: [size, hash]}`` as stored -> ``{key: (size, hash)}``."""
    if not isinstance(value, dict):
        raise TypeError(f"{name} is {value!r}, not a map")
    out = {}
    for k, entry in value.items():
        if not isinstance(entry, list) or len(entry) != 2:
            raise ValueError(f"{name} entry {k!r} is {entry!r}")
        out[_text(k, name)] = (_count(entry[0], "size"), _text(entry[1], "hash"))
    return out


def version_key(name: str, number: int) -> str:
    return f"{VERSIONS_PREFIX}{name}/{number:08d}.msgpack"


class Remote:
    """The remote at ``url`` (``s3://bucket/prefix`` or a folder), opened with ``creds``."""

    def __init__(self, url: str, creds: dict[str, Any] | None = None) -> None:
        if url.startswith("mem://"):
            raise ConfigError("A remote must outlive this process: use s3:// or a folder.")
        self.url = url.rstrip("/")
        self.storage: Storage = from_url(self.url, creds=creds)

    def __repr__(self) -> str:
        return f"Remote({self.url!r})"

    # --- keys -------------------------------------------------------------------

    @staticmethod
    def object_key(name: str, key: str) -> str:
        return f"datasets/{name}/{key}"

    @staticmethod
    def file_key(hash_hex: str) -> str:
        return f"files/{hash_hex}"

    # --- reading ----------------------------------------------------------------

    def _listed(self, prefix: str) -> list[str]:
        try:
            return list(self.storage.list(prefix))
        except StorageError as err:
            raise StorageError(
                f"Cannot read the remote {self.url}: {err} Check `tensorlake config list` "
                "(remote, endpoint_url, profile) and that the bucket exists."
            ) from None

    def version_numbers(self) -> dict[str, list[int]]:
        """Every dataset on the remote -> its version numbers, ascending."""
        found: dict[str, list[int]] = {}
        for key in self._listed(VERSIONS_PREFIX):
            match = _VERSION_KEY.match(key)
            if match:
                found.setdefault(match.group(1), []).append(int(match.group(2)))
        return {name: sorted(numbers) for name, numbers in sorted(found.items())}

    def versions(self, name: str) -> list[Version]:
        """The published versions of ``name``, oldest first (empty when there is none)."""
        keys = [k for k in self._listed(f"{VERSIONS_PREFIX}{name}/") if _VERSION_KEY.match(k)]
        return self.read_versions(sorted(keys))

    def read_versions(self, keys: Sequence[str]) -> list[Version]:
        out = [
            Version.from_bytes(data, f"{self.url}/{key}", key) for key, data in self.get_many(keys)
        ]
        return sorted(out, key=lambda v: (v.name, v.number))

    def get_many(self, keys: Iterable[str]) -> list[tuple[str, bytes]]:
        return list(self.storage.get_many(list(keys)))

    def present(self, name: str, keys: Sequence[str], listed: int) -> set[str]:
        """Which of the dataset's ``keys`` the remote holds already (a push that was cut
        off leaves some). ``listed``: how many objects the remote's indexes name, so the
        cheaper way is taken: one HEAD per key (concurrent), or listing them all (1,000
        per request)."""
        if not keys:
            return set()
        threads = config.io_threads()
        if -(-(listed + len(keys)) // 1000) > -(-len(keys) // threads):
            with ThreadPoolExecutor(threads) as pool:
                held = pool.map(lambda k: self.storage.exists(self.object_key(name, k)), keys)
                return {k for k, h in zip(keys, held, strict=True) if h}
        prefix = self.object_key(name, "")
        found = {k[len(prefix) :] for k in self._listed(prefix)}
        return found.intersection(keys)

    def has_file(self, hash_hex: str) -> bool:
        return self.storage.exists(self.file_key(hash_hex))

    def get(self, key: str) -> bytes:
        try:
            return self.storage.get(key)
        except KeyNotFoundError:
            raise FormatError(
                f"The remote {self.url} lacks {key}, which a published version needs: "
                "the remote is damaged (push the dataset again to repair it)."
            ) from None

    # --- writing ----------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        self.storage.put(key, data)

    def publish(self, version: Version) -> bool:
        """Write ``version``'s index unless that number exists: True if it was written."""
        return self.storage.put_if_absent(
            version_key(version.name, version.number), version.to_bytes()
        )


def merged_objects(versions: Iterable[Version]) -> dict[str, tuple[int, str]]:
    """Every object the ``versions`` list: key -> (size, hash)."""
    merged: dict[str, tuple[int, str]] = {}
    for v in versions:
        merged.update(v.objects)
    return merged
