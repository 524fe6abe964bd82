"""Rows moved as their stored bytes: copies to another dataset, and rechunking.

A row is read as stored (compressed image bytes, lz4 rows, link records) and appended
to the target as is: nothing is decoded or encoded again, so a copy is byte-identical
and costs one read and one write of each row. A tiled sample is read whole and tiled
again to the target's chunk size.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence

import numpy as np

from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.links.companions import companion_names
from tensorlake.engine.tensor.engine import TensorEngine

__all__ = ["BATCH_ROWS", "blank_meta", "copy_rows", "rechunk", "with_companions"]

BATCH_ROWS = 1024
"""Rows read and appended at a time: bounds the memory a copy holds."""


def blank_meta(meta: TensorMeta, name: str) -> TensorMeta:
    """``meta`` for a new tensor ``name`` with no rows (info and settings kept)."""
    new = copy.deepcopy(meta)
    new.name = name
    new.length = 0
    new.min_shape = new.max_shape = None
    new.storage_name = None
    return new


def with_companions(core: DatasetCore, names: Iterable[str]) -> list[str]:
    """``names`` and the hidden companions they name, in the core's order."""
    wanted = set(names)
    for name in list(wanted):
        wanted.update(c for c in companion_names(core.engine(name).meta.extra) if c in core.engines)
    return [n for n in core.engines if n in wanted]


def copy_rows(source: TensorEngine, target: TensorEngine, rows: Sequence[int] | np.ndarray) -> None:
    """Append ``rows`` of ``source`` to ``target`` as their stored bytes."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    for start in range(0, len(rows), BATCH_ROWS):
        stored = source.read_stored(rows[start : start + BATCH_ROWS])
        pending = target.new_pending()
        target.extend_encoded(stored, pending)


def rechunk(core: DatasetCore, names: Sequence[str]) -> None:
    """Rewrite every row of tensors ``names`` into fresh chunks of their chunk size
    (after many updates or pops, or a change of ``max_chunk_size``). A change like any
    other: commits before it keep their chunks."""
    core.check_writable()
    for name in names:
        old = core.engine(name)
        meta = blank_meta(old.meta, name)
        meta.storage_name = old.meta.storage_name
        new = core.new_engine(meta)
        copy_rows(old, new, np.arange(old.num_rows))
        core.replace_engine(name, new)
    core.changed()
