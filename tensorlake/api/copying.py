"""Copies: a dataset's (or view's) tensors into a new dataset, with or without rows,
and ``deepcopy``: every stored object, history included.

``copy`` and ``like`` work on the checked-out version: tensors keep their meta and info
(htype, dtype, compressions, class names ...) and, for ``copy``, their rows as stored
bytes (``engine/core/transfer.py``); the copy starts with no history of its own.
``deepcopy`` copies the objects themselves (commits, branches, chunks), so the copy is
the same dataset at another path.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from tensorlake._version import __version__
from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.engine.core.delete import delete_dataset
from tensorlake.engine.core.transfer import blank_meta, copy_rows, with_companions
from tensorlake.engine.format import keys, root
from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.errors import DatasetArgumentError, DatasetExistsError, TensorNotFoundError
from tensorlake.storage import Storage, from_url

__all__ = ["copy_objects", "copy_rows_into", "copy_schema", "open_target", "select", "tensor_like"]

_NOT_COPIED = (keys.LOCK_KEY, keys.TAKEOVER_KEY, ".tensorlake-registry.json")


def open_target(dest: str | os.PathLike, creds: dict | None, overwrite: bool) -> DatasetCore:
    """A new, empty dataset at ``dest`` (the one there is deleted first with ``overwrite``)."""
    url = os.fspath(dest)
    storage = from_url(url, creds=creds)
    _clear(storage, url, overwrite)
    root.create_dataset(storage, __version__)
    return DatasetCore(storage, url, False, creds=creds)


def _clear(storage: Storage, url: str, overwrite: bool) -> None:
    if root.dataset_exists(storage):
        if not overwrite:
            raise DatasetExistsError(
                f"A dataset already exists at {url}. Pass overwrite=True to replace it, "
                "or choose another destination."
            )
        delete_dataset(storage)


def select(core: DatasetCore, group: str, tensors: Sequence[str] | None) -> list[str]:
    """Full names of the tensors to copy: those of ``group`` (all, or those ``tensors``
    names: tensors or groups, relative to ``group``), with their hidden companions."""
    prefix = f"{group}/" if group else ""
    visible = [n for n, e in core.engines.items() if n.startswith(prefix) and not e.meta.hidden]
    if tensors is None:
        return with_companions(core, visible)
    if isinstance(tensors, str):
        tensors = [tensors]
    chosen = []
    for name in tensors:
        full = prefix + name
        found = [n for n in visible if n == full or n.startswith(full + "/")]
        if not found:
            raise TensorNotFoundError(
                f"No tensor or group '{name}' to copy. Tensors: "
                f"{sorted(n[len(prefix) :] for n in visible) or 'none'}."
            )
        chosen += found
    return with_companions(core, chosen)


def _relative(name: str, group: str) -> str:
    return name[len(group) + 1 :] if group else name


def copy_schema(
    source: DatasetCore, target: DatasetCore, names: Sequence[str], group: str, whole: bool
) -> None:
    """Create ``names`` of ``source`` in ``target`` (relative to ``group``), no rows; with
    ``whole``, the dataset's info, creds key names and settings too."""
    mapping = {n: _relative(n, group) for n in names}
    metas = []
    for name in names:
        meta = blank_meta(source.engine(name).meta, mapping[name])
        meta.extra = {
            k: mapping.get(v, v) if isinstance(v, str) else v for k, v in meta.extra.items()
        }
        metas.append(meta)
    target.add_tensors(metas)
    if whole:
        target.info.update(copy.deepcopy(source.info))
        target.links.creds_keys.extend(
            k for k in source.links.creds_keys if k not in target.links.creds_keys
        )
        target.settings.update(copy.deepcopy(source.settings))
        target.links.set_managed(source.links.managed)
        for key, creds in source.links.creds.items():
            target.links.set_creds(key, creds)
        target.changed()


def copy_rows_into(
    source: DatasetCore,
    target: DatasetCore,
    names: Sequence[str],
    group: str,
    rows: np.ndarray | None,
) -> None:
    """Append the rows (all, or ``rows``: absolute rows of a view) of ``names``."""
    with target.batch():
        for name in names:
            engine = source.engine(name)
            n = engine.num_rows
            selected = np.arange(n) if rows is None else rows[rows < n]
            copy_rows(engine, target.engine(_relative(name, group)), selected)
        target.changed()


def tensor_like(
    source: TensorMeta, extra_metas: dict[str, TensorMeta], name: str, unlink: bool
) -> list[TensorMeta]:
    """Metas of a new tensor ``name`` like ``source`` (its companions ``extra_metas``, by
    name, renamed along), no rows. ``unlink``: a link tensor becomes a tensor of what it
    links to (``link[image]`` -> ``image``), without companions."""
    meta = blank_meta(source, name)
    if unlink and meta.htype.startswith("link["):
        meta.htype = meta.htype[len("link[") : -1]
        meta.extra = {}
        return [meta]
    old_prefix, new_prefix = _companion_prefix(source.name), _companion_prefix(name)
    out = []
    for key, value in list(meta.extra.items()):
        if isinstance(value, str) and value in extra_metas and value.startswith(old_prefix):
            renamed = new_prefix + value[len(old_prefix) :]
            meta.extra[key] = renamed
            out.append(blank_meta(extra_metas[value], renamed))
    return [meta, *out]


def _companion_prefix(name: str) -> str:
    head, _, leaf = name.rpartition("/")
    return f"{head}/_{leaf}" if head else f"_{name}"


def copy_objects(
    source: Storage, dest: str | os.PathLike, creds: dict | None, overwrite: bool, threads: int = 8
) -> Any:
    """Copy every object of the dataset in ``source`` to ``dest`` (not its lock);
    returns the destination storage."""
    if not source.supports_listing:
        raise DatasetArgumentError(
            f"deepcopy needs to list the objects at {source.url}, which this storage cannot; "
            "use copy() (the checked-out version, no history) instead."
        )
    url = os.fspath(dest)
    target = from_url(url, creds=creds)
    _clear(target, url, overwrite)
    names = [k for k in source.list("") if k not in _NOT_COPIED and k != keys.DATASET_META_KEY]

    def one(key: str) -> None:
        target.put(key, source.get(key))

    with ThreadPoolExecutor(max(1, threads)) as pool:
        list(pool.map(one, names))
    target.put(keys.DATASET_META_KEY, source.get(keys.DATASET_META_KEY))  # last: now it exists
    return target
