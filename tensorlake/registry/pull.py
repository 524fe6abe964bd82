"""``pull``: install a published version locally, or bring the local copy up to it.

Only what the local copy lacks is downloaded, each object checked against the hash its
version's index lists before it is stored (an object that does not match is refused,
and nothing is installed). A first pull assembles the copy in a hidden folder beside the
others and moves it into place at the end; an update stores the new objects beside the
old ones and moves the branch last. Either way an interrupted pull installs nothing, and
the next one downloads only what is still missing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tensorlake.compute.progress import human_bytes
from tensorlake.engine.format import keys, records
from tensorlake.engine.lock import WriterLock
from tensorlake.engine.version.reachable import ancestry, references_of
from tensorlake.errors import DatasetNotFoundError, FormatError, LockedError, VersionError
from tensorlake.registry.home import dataset_root, datasets_dir, remember
from tensorlake.registry.names import parse_name
from tensorlake.registry.push import open_remote
from tensorlake.registry.remote import Remote, Version, digest, merged_objects
from tensorlake.registry.transfer import Transfer
from tensorlake.storage import LocalStorage

__all__ = ["PullReport", "pull", "resolve_version"]


@dataclass
class PullReport:
    """What a pull did."""

    name: str
    version: int
    commit: str
    downloaded_objects: int
    downloaded_bytes: int
    seconds: float
    path: str

    def __str__(self) -> str:
        if not self.downloaded_objects:
            return f"{self.name}: version {self.version} is installed already ({self.path})."
        return (
            f"{self.name}: version {self.version} (commit {self.commit[:12]}) installed in "
            f"{self.path}: {self.downloaded_objects} objects "
            f"({human_bytes(self.downloaded_bytes)}) in {self.seconds:.1f} s."
        )


def resolve_version(
    remote: Remote, name: str, version: int | None
) -> tuple[Version, list[Version]]:
    """``(the version asked for (None: the latest), every published version)``."""
    published = remote.versions(name)
    if not published:
        raise DatasetNotFoundError(
            f"The remote {remote.url} has no dataset {name!r}: `tensorlake ls --remote` "
            "lists what it has."
        )
    if version is None:
        return published[-1], published
    for v in published:
        if v.number == version:
            return v, published
    raise VersionError(
        f"{name!r} has no version {version} on {remote.url}; its versions are "
        f"{[v.number for v in published]}."
    )


def pull(
    name: str,
    version: int | None = None,
    force: bool = False,
    progressbar: bool = True,
    remote: str | None = None,
) -> PullReport:
    """Install version ``version`` (default: the latest) of ``name`` from the remote into
    ``$TENSORLAKE_HOME/datasets/<name>``, or update the local copy to it. A local copy
    with commits or changes the version does not hold is replaced only with
    ``force=True``. ``name`` may be ``"name@3"``.

    Example::

        tl.registry.pull("flower")        # the latest version
        tl.registry.pull("flower@2", force=True)  # back to an older one
    """
    started = time.perf_counter()
    name, at = parse_name(name)
    version = version if version is not None else at
    source = open_remote(remote)
    target, published = resolve_version(source, name, version)
    root = dataset_root(name)
    fresh = not (root / keys.DATASET_META_KEY).exists()
    work = datasets_dir() / f".pull-{name}" if fresh else root
    work.mkdir(parents=True, exist_ok=True)
    storage = LocalStorage(str(work))
    lock = WriterLock(storage)
    try:
        lock.acquire()
    except LockedError as err:
        raise LockedError(
            f"Cannot pull into {name!r} while another process writes it: {err}",
            holder=err.holder,
        ) from None
    storage.remove_temp_files()  # of a pull (or writer) killed here before: the lock is ours
    objects = merged_objects(v for v in published if v.number <= target.number)
    fetch = _Fetcher(source, name, storage, objects, progressbar)
    try:
        fetch([k for k in objects if k.startswith(keys.COMMITS_PREFIX)])
        fetch([keys.DATASET_META_KEY])
        history = ancestry(storage, target.commit)
        if not fresh:
            _check_local(name, storage, target, history, force)
        # segments are downloaded as they are found: the index segments, then the
        # leaves they list
        found = references_of(storage, history, fetch.then_read)
        fetch(sorted(found.chunks))
        fetch.files(work, target)
        records.write_head(storage, target.branch, target.commit)
        if storage.exists(keys.staging_key(target.branch)):
            records.delete_staging(storage, target.branch)  # force: its changes go
    finally:
        fetch.moves.close()
        lock.release()
    if fresh:
        os.replace(work, root)
    remember(root, name, published, set(history))
    return PullReport(
        name,
        target.number,
        target.commit,
        fetch.count,
        fetch.bytes,
        time.perf_counter() - started,
        str(root),
    )


def _check_local(
    name: str, storage: LocalStorage, target: Version, history: list[str], force: bool
) -> None:
    """Refuse (unless ``force``) to move a branch that holds what ``target`` lacks."""
    if force:
        return
    try:
        head = records.read_head(storage, target.branch)
    except VersionError:
        return
    if head not in history:
        raise VersionError(
            f"The local copy of {name!r} has commits that version {target.number} does not "
            f"hold (its {target.branch} is at {head[:12]}): `tensorlake push {name}` "
            f"publishes them, or `tensorlake pull {name} --force` discards them."
        )
    if records.current_staging(storage, target.branch, head) is not None:
        raise VersionError(
            f"The local copy of {name!r} has uncommitted changes: commit and push them, "
            f"or `tensorlake pull {name} --force` discards them."
        )


class _Fetcher:
    """Downloads objects the local copy lacks, each checked against its listed hash."""

    def __init__(
        self,
        remote: Remote,
        name: str,
        storage: LocalStorage,
        objects: dict[str, tuple[int, str]],
        progressbar: bool,
    ) -> None:
        self.remote, self.name, self.storage = remote, name, storage
        self.objects = objects
        self.moves = Transfer(f"pull {name}", progressbar)
        self.count = self.bytes = 0

    def __call__(self, wanted: list[str]) -> None:
        missing = [k for k in wanted if not self.storage.exists(k)]
        unlisted = [k for k in missing if k not in self.objects]
        if unlisted:
            raise FormatError(
                f"The remote's index of {self.name!r} does not list {unlisted[0]} (and "
                f"{len(unlisted) - 1} more), which the version needs: the remote is damaged; "
                "push the dataset again from a complete copy.",
                key=unlisted[0],
            )
        self.bytes += self.moves.run(missing, self._one, sum(self.objects[k][0] for k in missing))
        self.count += len(missing)

    def then_read(self, wanted: list[str]) -> Iterator[tuple[str, bytes]]:
        """Download what the local copy lacks of ``wanted``, then read it locally."""
        self(wanted)
        return self.storage.get_many(wanted)

    def _one(self, key: str) -> int:
        data = self.remote.get(self.remote.object_key(self.name, key))
        _check(
            data, self.objects[key], f"{self.remote.url}/{self.remote.object_key(self.name, key)}"
        )
        self.storage.put(key, data)
        return len(data)

    def files(self, root: Path, version: Version) -> None:
        """The version's extra files (README.md, assets/...), each checked."""
        for path, listed in version.files.items():
            dest = root / path
            if dest.is_file() and digest(dest.read_bytes()) == listed[1]:
                continue
            data = self.remote.get(self.remote.file_key(listed[1]))
            _check(data, listed, f"{self.remote.url}/{self.remote.file_key(listed[1])} ({path})")
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, dest)
            self.count += 1
            self.bytes += len(data)


def _check(data: bytes, listed: tuple[int, str], where: str) -> None:
    if len(data) != listed[0] or digest(data) != listed[1]:
        raise FormatError(
            f"{where} is damaged: its size or checksum is not what its version's index lists "
            f"({len(data)} bytes, hash {digest(data)[:12]}; expected {listed[0]} bytes, "
            f"hash {listed[1][:12]}). Nothing was installed; push the dataset again.",
            key=where,
        )
