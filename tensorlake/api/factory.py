"""Opening, creating and deleting datasets by path: ``tl.empty``, ``tl.load`` ..."""

from __future__ import annotations

import os
from typing import Any

from tensorlake._version import __version__
from tensorlake.api.dataset import Dataset
from tensorlake.engine import version_state
from tensorlake.engine.dataset_core import DatasetCore
from tensorlake.errors import DatasetNotFoundError
from tensorlake.storage import Storage, from_url

PathLike = str | os.PathLike


def _storage(path: PathLike, creds: dict | None, read_only: bool = False) -> tuple[Storage, str]:
    url = os.fspath(path)
    return from_url(url, creds=creds, read_only=read_only), url


def empty(path: PathLike, overwrite: bool = False, creds: dict | None = None) -> Dataset:
    """Create an empty dataset at ``path`` (``mem://``, a local path, ``s3://``).

    Example::

        ds = tl.empty("s3://my-bucket/coco-train", creds=creds, overwrite=True)

    Raises ``DatasetExistsError`` when one is already there, unless ``overwrite=True``,
    which deletes it first.
    """
    storage, url = _storage(path, creds)
    if overwrite:
        storage.clear()
    version_state.create_dataset(storage, __version__)
    return Dataset(DatasetCore(storage, url, False, version_state.DEFAULT_BRANCH))


def load(
    path: PathLike, read_only: bool | None = None, creds: dict | None = None, **kwargs: Any
) -> Dataset:
    """Open an existing dataset; ``read_only=True`` refuses every write.

    Example::

        ds = tl.load("./coco", read_only=True)
    """
    if kwargs:
        raise TypeError(f"load() got unexpected arguments {sorted(kwargs)}")
    storage, url = _storage(path, creds, read_only=bool(read_only))
    version_state.check_format(storage)
    return Dataset(DatasetCore(storage, url, bool(read_only), version_state.DEFAULT_BRANCH))


def dataset(
    path: PathLike,
    read_only: bool | None = None,
    overwrite: bool = False,
    creds: dict | None = None,
) -> Dataset:
    """Load the dataset at ``path`` if there is one, else create it empty."""
    if not overwrite and exists(path, creds=creds):
        return load(path, read_only=read_only, creds=creds)
    return empty(path, overwrite=overwrite, creds=creds)


def exists(path: PathLike, creds: dict | None = None) -> bool:
    """Whether a dataset exists at ``path``."""
    storage, _ = _storage(path, creds, read_only=True)
    return version_state.dataset_exists(storage)


def delete(path: PathLike, creds: dict | None = None, large_ok: bool = True) -> None:
    """Delete the dataset at ``path`` and everything under it."""
    storage, url = _storage(path, creds)
    if not version_state.dataset_exists(storage):
        raise DatasetNotFoundError(f"No dataset at {url} to delete.")
    storage.clear()
