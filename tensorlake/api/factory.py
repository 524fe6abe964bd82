"""Opening, creating and deleting datasets by path: ``tl.empty``, ``tl.load`` ..."""

from __future__ import annotations

import os

from tensorlake._version import __version__
from tensorlake.api import copying
from tensorlake.api.dataset import Dataset, core_of
from tensorlake.api.names import resolve_name
from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.engine.core.delete import delete_dataset
from tensorlake.engine.format import records, root
from tensorlake.engine.lock import break_lock as break_writer_lock
from tensorlake.engine.lock import check_lock_mode
from tensorlake.engine.version import refs
from tensorlake.errors import DatasetArgumentError, DatasetNotFoundError, VersionError
from tensorlake.storage import Storage, from_url

__all__ = [
    "break_lock",
    "copy",
    "dataset",
    "deepcopy",
    "delete",
    "empty",
    "exists",
    "like",
    "load",
]

PathLike = str | os.PathLike


def _storage(path: PathLike, creds: dict | None, read_only: bool = False) -> tuple[Storage, str]:
    url = os.fspath(path)
    return from_url(url, creds=creds, read_only=read_only), url


def empty(
    path: PathLike, overwrite: bool = False, creds: dict | None = None, lock: str = "writer"
) -> Dataset:
    """Create an empty dataset at ``path`` (``mem://``, a local path, ``s3://``).

    Example::

        ds = tl.empty("s3://my-bucket/coco-train", creds=creds, overwrite=True)

    Raises ``DatasetExistsError`` when one is already there, unless ``overwrite=True``,
    which deletes it first. ``lock="none"``: no writer lock (see ``load``).
    """
    check_lock_mode(lock)
    storage, url = _storage(path, creds)
    if overwrite and root.dataset_exists(storage):
        delete_dataset(storage, lock)
    root.create_dataset(storage, __version__)
    return Dataset(DatasetCore(storage, url, False, creds=creds, lock=lock))


def load(
    path: PathLike,
    read_only: bool | None = None,
    creds: dict | None = None,
    reset: bool = False,
    version: str | None = None,
    lock: str = "writer",
) -> Dataset:
    """Open an existing dataset at its ``main`` branch.

    ``path`` may be a registry name (``"flower"``, ``"flower@3"``: a dataset of
    ``$TENSORLAKE_HOME/datasets``, when nothing of that name is in the current
    directory; see ``tensorlake.api.names``). ``read_only=True`` refuses every write. ``version`` (or ``path@version``) opens a
    branch or a past commit (read-only). ``reset=True`` first drops the branch's
    uncommitted changes: after a crash it restores the last commit (checkpoint) exactly.
    ``lock="none"`` takes no writer lock: only for an S3-compatible server without
    conditional writes (``ConditionalWritesError``) and a single writer; two writers
    then corrupt the dataset (docs/reliability.md).

    Example::

        ds = tl.load("./coco", reset=True)
        old = tl.load("s3://bucket/coco@3f2a9c01b7e4", read_only=True, creds=creds)
    """
    url = os.fspath(path)
    named = resolve_name(url) if creds is None else None
    if named is not None:
        url, version = named[0], version or named[1]
    if version is None:
        url, version = _split_version(url, creds)
    storage, url = _storage(url, creds, read_only=bool(read_only))
    root.check_format(storage)
    branch, commit_id = records.DEFAULT_BRANCH, None
    if version is not None:
        found_branch, found_commit = refs.resolve_ref(storage, version)
        branch, commit_id = (found_branch, None) if found_branch else (branch, found_commit)
    if reset and (read_only or commit_id is not None):
        raise VersionError("reset=True needs a writable branch; drop read_only or version.")
    check_lock_mode(lock)
    ds = Dataset(DatasetCore(storage, url, bool(read_only), branch, commit_id, creds, lock))
    if reset:
        ds.reset()
    return ds


def _split_version(url: str, creds: dict | None) -> tuple[str, str | None]:
    """``path@version`` -> (path, version), when ``path`` alone is the dataset."""
    head, sep, tail = url.rpartition("@")
    if not sep or not head or "/" in tail or not tail:
        return url, None
    if exists(url, creds=creds) or not exists(head, creds=creds):
        return url, None
    return head, tail


def dataset(
    path: PathLike,
    read_only: bool | None = None,
    overwrite: bool = False,
    creds: dict | None = None,
    lock: str = "writer",
) -> Dataset:
    """Load the dataset at ``path`` if there is one, else create it empty (``lock`` as
    ``load`` takes it)."""
    if not overwrite and exists(path, creds=creds):
        return load(path, read_only=read_only, creds=creds, lock=lock)
    return empty(path, overwrite=overwrite, creds=creds, lock=lock)


def exists(path: PathLike, creds: dict | None = None) -> bool:
    """Whether a dataset exists at ``path`` (or a registry name, as ``load`` takes it)."""
    storage, _ = _storage(_named(path, creds), creds, read_only=True)
    return root.dataset_exists(storage)


def delete(path: PathLike, creds: dict | None = None, large_ok: bool = True) -> None:
    """Delete the dataset at ``path`` (or a registry name) and everything under it."""
    storage, url = _storage(_named(path, creds), creds)
    if not root.dataset_exists(storage):
        raise DatasetNotFoundError(f"No dataset at {url} to delete.")
    delete_dataset(storage)


def _named(path: PathLike, creds: dict | None) -> PathLike:
    """The local copy's path when ``path`` is a registry name without a version."""
    try:
        named = resolve_name(os.fspath(path)) if creds is None else None
    except VersionError:  # NAME@VERSION of a version the copy lacks: not this name
        return path
    return named[0] if named is not None and named[1] is None else path


def break_lock(path: PathLike, creds: dict | None = None) -> dict | None:
    """Remove the writer lock of the dataset at ``path``, whoever holds it; returns the
    holder it removed (``owner``, ``host``, ``pid`` ...) or None.

    Only for a lock whose holder is gone but cannot be detected as gone (a process on
    another machine that died less than a lease ago). Breaking the lock of a live
    writer lets two processes write at once.
    """
    storage, _ = _storage(path, creds)
    holder = break_writer_lock(storage)
    return holder.as_dict() if holder is not None else None


def _source(src: PathLike | Dataset, creds: dict | None) -> Dataset:
    return src if isinstance(src, Dataset) else load(src, read_only=True, creds=creds)


def copy(
    src: PathLike | Dataset,
    dest: PathLike,
    tensors: list[str] | None = None,
    overwrite: bool = False,
    src_creds: dict | None = None,
    dest_creds: dict | None = None,
    token: str | None = None,
    num_workers: int = 0,
    scheduler: str = "threaded",
    progressbar: bool = True,
    **kwargs: object,
) -> Dataset:
    """Copy the dataset at ``src`` (a path, or a dataset or view) to ``dest``: the
    version checked out (a path: the head of ``main``, staged changes included), without
    history; ``tl.deepcopy`` keeps it. As ``Dataset.copy``.

    Example::

        tl.copy("s3://bucket/coco", "./coco-local", src_creds=creds)
    """
    return _source(src, src_creds).copy(
        dest,
        tensors=tensors,
        overwrite=overwrite,
        creds=dest_creds,
        token=token,
        num_workers=num_workers,
        scheduler=scheduler,
        progressbar=progressbar,
    )


def deepcopy(
    src: PathLike | Dataset,
    dest: PathLike,
    tensors: list[str] | None = None,
    overwrite: bool = False,
    src_creds: dict | None = None,
    dest_creds: dict | None = None,
    token: str | None = None,
    num_workers: int = 0,
    scheduler: str = "threaded",
    progressbar: bool = True,
    **kwargs: object,
) -> Dataset:
    """Copy the dataset at ``src`` to ``dest`` with its whole history: every commit,
    branch, staged change and chunk, as stored (no row is read or rewritten). The copy is
    opened at ``main``. ``tensors`` must be None (a subset would cut the history: use
    ``tl.copy``); ``num_workers`` threads copy objects (default 8).

    Example::

        backup = tl.deepcopy("./coco", "s3://bucket/coco-backup", dest_creds=creds)
    """
    if tensors is not None:
        raise DatasetArgumentError(
            "deepcopy copies every version of every tensor; to copy some tensors, use "
            "tl.copy(src, dest, tensors=[...]) (the checked-out version only)."
        )
    if isinstance(src, Dataset):
        source = core_of(src)
        source.flush()
        source.writer.wait()
        storage = source.storage
    else:
        storage, _ = _storage(src, src_creds, read_only=True)
        if not root.dataset_exists(storage):
            raise DatasetNotFoundError(f"No dataset at {os.fspath(src)} to copy.")
    copying.copy_objects(storage, dest, dest_creds, overwrite, num_workers or 8)
    return load(dest, creds=dest_creds)


def like(
    dest: PathLike,
    src: PathLike | Dataset,
    tensors: list[str] | None = None,
    overwrite: bool = False,
    creds: dict | None = None,
    token: str | None = None,
    public: bool = False,
    **kwargs: object,
) -> Dataset:
    """A new dataset at ``dest`` with the tensors (meta and info), groups and dataset
    info of ``src`` (a path or a dataset), and no rows. ``creds`` are ``dest``'s (and
    ``src``'s when it is a path).

    Example::

        val = tl.like("./coco-val", train_ds)
    """
    source_ds = _source(src, creds)
    source = core_of(source_ds)
    group = source_ds.group_index
    names = copying.select(source, group, tensors)
    target = copying.open_target(dest, creds, overwrite)
    with target.batch():
        copying.copy_schema(source, target, names, group, whole=not group)
    return Dataset(target)
