"""Rows removed (``pop``, ``clear``) and empty rows added (``append_empty``).

A removal rewrites the chunks that held the rows (under new ids, as a row update does)
and is recorded in the branch's ``Changes`` (how many rows of the base commit went), so
``diff`` tells rows deleted from rows added. An *empty row* is what Deep Lake appends
for ``None`` (the htype's ``encode_empty``): a sample of no elements (shape
``(0, ..., 0)`` of the tensor's rank), an empty string for text, ``{}`` for json.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.engine.format import records
from tensorlake.engine.htypes.base import Encoded, Pending
from tensorlake.engine.links.companions import companion_names
from tensorlake.engine.tensor.engine import TensorEngine
from tensorlake.errors import DatasetArgumentError, InvalidIndexError

__all__ = ["check_pop_rows", "clear_tensor", "empty_rows", "pop_rows"]


def check_pop_rows(index: int | Sequence[int] | None, length: int, what: str) -> list[int]:
    """The rows ``pop(index)`` removes, checked as Deep Lake does: ``None`` is the last
    row; no negative, duplicate or out-of-range rows."""
    rows = [length - 1] if index is None else index
    if isinstance(rows, (int, np.integer)) and not isinstance(rows, bool):
        rows = [int(rows)]
    rows = [int(r) for r in rows]  # type: ignore[union-attr]
    if len(set(rows)) != len(rows):
        raise DatasetArgumentError(f"pop() got duplicate rows {rows}; give each row once.")
    if rows and length == 0:
        raise InvalidIndexError(f"Cannot pop from {what}: it has no rows.")
    for r in rows:
        if r < 0:
            raise InvalidIndexError(
                f"pop() does not take negative rows (got {r}); use len - {-r} instead."
            )
        if r >= length:
            raise InvalidIndexError(f"Row {r} is out of range: {what} has {length} rows.")
    return rows


def _with_companions(core: DatasetCore, name: str) -> list[str]:
    extra = core.engine(name).meta.extra
    return [name, *(c for c in companion_names(extra) if c in core.engines)]


def _base_length(core: DatasetCore, name: str) -> int:
    """Rows the tensor had in the head commit (0 if it is new since)."""
    base = core.changes.renamed.get(name, name)
    manifest = records.read_commit(core.storage, core.commit_id).manifest
    for t in manifest["tensors"]:
        if t["meta"]["name"] == base:
            return int(t["meta"]["length"])
    return 0


def _record(core: DatasetCore, name: str, rows: Sequence[int]) -> None:
    remaining = _base_length(core, name) - core.changes.deleted.get(name, 0)
    core.changes.rows_deleted(name, rows, sum(1 for r in rows if r < remaining))


def pop_rows(core: DatasetCore, rows: Mapping[str, Sequence[int]]) -> None:
    """Remove rows from tensors (``{tensor: rows}``, each row in range), link tensors'
    companions with them."""
    core.check_writable()
    for name, selected in rows.items():
        if not selected:
            continue
        for victim in _with_companions(core, name):
            engine = core.engine(victim)
            mine = [r for r in selected if r < engine.num_rows]
            _record(core, victim, mine)
            engine.delete_rows(mine)
    core.cache.clear()
    core.changed()


def clear_tensor(core: DatasetCore, name: str) -> None:
    """Remove every row of tensor ``name`` (and of its companions)."""
    core.check_writable()
    for victim in _with_companions(core, name):
        engine = core.engine(victim)
        _record(core, victim, range(engine.num_rows))
        engine.clear()
    core.changed()


def empty_rows(engine: TensorEngine, count: int) -> tuple[list[Encoded], Pending]:
    """``count`` empty rows of ``engine``'s tensor, encoded, with their pending state:
    what appending ``None`` stores (zero bytes of shape ``(0, ..., 0)``; ``""`` for text,
    ``{}`` for json; see the htype's ``encode_empty``). An empty row fixes no dtype."""
    pending = engine.new_pending()
    return engine.prepare([None] * count, pending), pending
