"""``push``: publish a local dataset's current commit as the next version of its name."""

from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tensorlake.compute.progress import human_bytes
from tensorlake.engine.format import records
from tensorlake.engine.lock import WriterLock
from tensorlake.engine.version.reachable import ancestry, needed_keys
from tensorlake.errors import DatasetNotFoundError, LockedError, VersionError
from tensorlake.registry.home import (
    dataset_root,
    extra_files,
    local_head,
    remember,
    summarize,
)
from tensorlake.registry.remote import Remote, Version, digest, merged_objects
from tensorlake.registry.settings import load_settings
from tensorlake.registry.transfer import Transfer
from tensorlake.storage import LocalStorage

__all__ = ["PushReport", "open_remote", "push"]


@dataclass
class PushReport:
    """What a push did: the version it published (or found already published)."""

    name: str
    version: int
    commit: str
    uploaded_objects: int
    uploaded_bytes: int
    objects: int
    seconds: float
    up_to_date: bool = False

    def __str__(self) -> str:
        if self.up_to_date:
            return f"{self.name}: version {self.version} is this commit already; nothing pushed."
        return (
            f"{self.name}: published version {self.version} (commit {self.commit[:12]}): "
            f"{self.uploaded_objects} of {self.objects} objects uploaded "
            f"({human_bytes(self.uploaded_bytes)}) in {self.seconds:.1f} s."
        )


def open_remote(remote: str | None = None) -> Remote:
    """The remote named by ``remote`` (a URL), else by the settings."""
    settings = load_settings()
    url = remote or settings.require_remote()
    creds = settings.creds() if url == settings.remote else None
    return Remote(url, creds)


def push(
    name: str, force: bool = False, progressbar: bool = True, remote: str | None = None
) -> PushReport:
    """Publish the local dataset ``name``'s head commit (branch ``main``) as a new
    version. Only objects the remote lacks are uploaded; the version becomes visible once
    all of them are there. ``force=True`` publishes a commit that does not descend from
    the remote's latest version (which stays published).

    Example::

        tl.registry.push("flower")        # -> PushReport: version 3, 2 objects uploaded
    """
    started = time.perf_counter()
    root = dataset_root(name)
    if not (root / "tensorlake.json").exists():
        raise DatasetNotFoundError(
            f"No local dataset {name!r} in {root.parent}: `tensorlake ls` lists them."
        )
    target = open_remote(remote)
    storage = LocalStorage(str(root))
    lock = WriterLock(storage)
    try:
        lock.acquire()  # nobody writes the copy while it is pushed
    except LockedError as err:
        raise LockedError(
            f"Cannot push {name!r} while another process writes it: {err}", holder=err.holder
        ) from None
    try:
        head, staged = local_head(root)
        if head is None:
            raise VersionError(f"{name!r} has no branch {records.DEFAULT_BRANCH!r} to push.")
        if staged and records.current_staging(storage, records.DEFAULT_BRANCH, head):
            print(
                f"tensorlake: {name} has uncommitted changes; pushing its last commit "
                f"{head[:12]} (commit them first to publish them).",
                file=sys.stderr,
            )
        return _publish(name, root, storage, head, target, force, progressbar, started)
    finally:
        lock.release()


def _publish(
    name: str,
    root: Path,
    storage: LocalStorage,
    head: str,
    remote: Remote,
    force: bool,
    progressbar: bool,
    started: float,
) -> PushReport:
    published = remote.versions(name)
    history = set(ancestry(storage, head))
    _check_descends(name, published, history, head, force)
    if published and published[-1].commit == head:
        return _done(name, root, published, published[-1], history, 0, 0, 0, started, True)
    needed = needed_keys(storage, head)
    known = merged_objects(published)
    todo = [k for k in needed if k not in known]
    there = remote.present(name, todo, len(known))
    added: dict[str, tuple[int, str]] = {}

    def upload(key: str) -> int:
        data = storage.get(key)
        added[key] = (len(data), digest(data))
        if key in there:
            return 0
        remote.put(remote.object_key(name, key), data)
        return len(data)

    moves = Transfer(f"push {name}", progressbar)
    try:
        moved = moves.run(todo, upload, sum(os.path.getsize(root / k) for k in todo))
    finally:
        moves.close()
    files = {}
    for path in extra_files(root):
        data = (root / path).read_bytes()
        files[path] = (len(data), digest(data))
        if not remote.has_file(files[path][1]):
            remote.put(remote.file_key(files[path][1]), data)
            moved += len(data)
    summary = summarize(root)
    version = Version(
        name=name,
        number=(published[-1].number if published else 0) + 1,
        commit=head,
        branch=records.DEFAULT_BRANCH,
        time=time.time(),
        author=f"{records.user_name()}@{socket.gethostname()}",
        summary={k: summary[k] for k in ("rows", "tensors", "bytes")},
        objects={k: added[k] for k in todo},
        files=files,
    )
    while not remote.publish(version):  # another push took this number meanwhile
        published = remote.versions(name)
        if published[-1].commit == head:
            return _done(name, root, published, published[-1], history, 0, 0, 0, started, True)
        _check_descends(name, published, history, head, force)
        version.number = published[-1].number + 1
    published.append(version)
    uploaded = len(todo) - len(there)
    return _done(name, root, published, version, history, uploaded, moved, len(needed), started)


def _check_descends(
    name: str, published: list[Version], history: set[str], head: str, force: bool
) -> None:
    if not published or force or published[-1].commit in history:
        return
    latest = published[-1]
    raise VersionError(
        f"The remote's latest version of {name!r}, {latest.number} (commit "
        f"{latest.commit[:12]}, by {latest.author}), is not in the history of your commit "
        f"{head[:12]}: `tensorlake pull {name} --force` takes it, or `tensorlake push "
        f"{name} --force` publishes yours as a new version anyway."
    )


def _done(
    name: str,
    root: Path,
    published: list[Version],
    version: Version,
    history: set[str],
    uploaded: int,
    moved: int,
    objects: int,
    started: float,
    up_to_date: bool = False,
) -> PushReport:
    remember(root, name, published, history)
    return PushReport(
        name,
        version.number,
        version.commit,
        uploaded,
        moved,
        objects,
        time.perf_counter() - started,
        up_to_date,
    )
