"""Saved views: ``ds[...].save_view()``, ``ds.get_views()``, ``ds.load_view(id)``,
``ds.delete_view(id)``.

A saved view is its row numbers and the commit they refer to, stored in the dataset's
own storage (``views/<id>.msgpack``, ``engine/format/views.py``), so it reads back the
same rows whatever was written since. ``optimize=True`` also copies the view's rows into
a dataset of their own under ``views/<id>/`` (fast sequential reads, no other rows
fetched). A view saved with ``path=`` is such a copy at that path, loaded with
``tl.load`` (as Deep Lake's external views are).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.engine.format import keys
from tensorlake.engine.format.views import (
    SavedView,
    check_view_id,
    list_views,
    new_view_id,
    read_view,
    write_view,
)
from tensorlake.errors import DatasetError, ReadOnlyError, ViewNotFoundError
from tensorlake.storage import from_url

__all__ = ["ViewEntry", "data_url", "find", "new_view", "open_optimized", "remove", "store"]


@dataclass(frozen=True)
class ViewEntry:
    """A saved view as ``ds.get_views()`` lists it (Deep Lake's ``ViewEntry``).

    ``load()`` gives the view, ``optimize()`` copies its rows into a dataset of their own
    (then loads it), ``delete()`` removes it.
    """

    id: str
    message: str | None
    commit_id: str
    branch: str
    time: float
    num_samples: int
    optimized: bool
    _load: Callable[[bool], Any] = field(repr=False, compare=False)
    _delete: Callable[[], None] = field(repr=False, compare=False)

    @property
    def virtual(self) -> bool:
        """True while only the row numbers are stored (not optimized)."""
        return not self.optimized

    def load(self) -> Any:
        return self._load(False)

    def optimize(self) -> Any:
        return self._load(True)

    def delete(self) -> None:
        self._delete()


def _check_writable(core: DatasetCore, op: str) -> None:
    if core.read_only or core.storage.read_only:
        raise ReadOnlyError(
            f"{op}() stores in the dataset at {core.url}, which is open read-only. "
            "Open it with tl.load(path, read_only=False), or save_view(path=...) elsewhere."
        )
    core.take_lock()


def new_view(
    core: DatasetCore,
    rows: np.ndarray,
    group: str,
    message: str | None,
    view_id: str | None,
    tensors: Sequence[str] | None,
) -> SavedView:
    """The record of a view of ``rows`` (absolute) of the checked-out commit."""
    _check_writable(core, "save_view")
    if not core.detached and core.state.has_head_changes:
        raise DatasetError(
            f"Branch '{core.branch}' has uncommitted changes: a saved view names a commit. "
            "ds.commit() first (or checkout a commit), then save the view."
        )
    return SavedView(
        id=check_view_id(view_id) if view_id is not None else new_view_id(),
        message=message,
        commit=core.commit_id,
        branch=core.branch,
        time=time.time(),
        group=group,
        rows=np.asarray(rows, dtype=np.int64),
        tensors=tuple([tensors] if isinstance(tensors, str) else tensors) if tensors else None,
    )


def store(core: DatasetCore, view: SavedView, overwrite: bool) -> None:
    if not write_view(core.storage, view, overwrite):
        raise DatasetError(
            f"A view with id '{view.id}' is saved already. Pass overwrite=True to replace "
            "it, or another id."
        )


def data_url(core: DatasetCore, view_id: str) -> str:
    """Where the optimized copy of view ``view_id`` lives: under ``views/<id>/`` of the
    dataset's root (for ``mem://``, the memory store of that name)."""
    prefix = keys.view_data_prefix(view_id).rstrip("/")
    if "://" in core.url:
        return f"{core.url.rstrip('/')}/{prefix}"
    return os.path.join(core.url, *prefix.split("/"))


def find(core: DatasetCore, view_id: str) -> SavedView:
    view = read_view(core.storage, check_view_id(view_id))
    if view is None:
        known = [v.id for v in list_views(core.storage)]
        raise ViewNotFoundError(
            f"No saved view '{view_id}' in {core.url}. Saved views: {known or 'none'} "
            "(ds.get_views() lists them)."
        )
    return view


def open_optimized(core: DatasetCore, view_id: str) -> DatasetCore:
    """The optimized copy of a view, read-only."""
    url = data_url(core, view_id)
    storage = from_url(url, creds=core.creds, read_only=True)
    return DatasetCore(storage, url, True, creds=core.creds)


def remove(core: DatasetCore, view_id: str) -> None:
    """Delete a saved view and its optimized copy."""
    view = find(core, view_id)
    _check_writable(core, "delete_view")
    if view.optimized:
        copy = from_url(data_url(core, view.id), creds=core.creds)
        if copy.supports_listing:
            inside = list(copy.list(""))
            if inside:
                copy.delete_many(inside)
    core.storage.delete(keys.view_key(view.id))


def entries(
    core: DatasetCore,
    commit_id: str | None,
    load: Callable[[str, bool], Any],
    delete: Callable[[str], None],
) -> list[ViewEntry]:
    """The saved views (of ``commit_id`` when given) as ``ViewEntry``s."""
    return [
        _entry(v, load, delete)
        for v in list_views(core.storage)
        if commit_id is None or v.commit == commit_id
    ]


def _entry(
    v: SavedView, load: Callable[[str, bool], Any], delete: Callable[[str], None]
) -> ViewEntry:
    return ViewEntry(
        v.id,
        v.message,
        v.commit,
        v.branch,
        v.time,
        len(v.rows),
        v.optimized,
        lambda optimize: load(v.id, optimize),
        lambda: delete(v.id),
    )


def entry(
    core: DatasetCore,
    view_id: str,
    load: Callable[[str, bool], Any],
    delete: Callable[[str], None],
) -> ViewEntry:
    return _entry(find(core, view_id), load, delete)
