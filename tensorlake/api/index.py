"""Which rows (and which part of each sample) a view selects.

Rows are kept as an ``int`` (one row: the view is a sample), a ``range`` (a slice: cheap
even over millions of rows) or an ``int64`` array (a list of rows), always absolute row
numbers of the underlying tensors. ``None`` means every row, now and after appends.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorlake.errors import InvalidIndexError

__all__ = ["Index", "Rows"]

Rows = int | range | np.ndarray | None


class Index:
    __slots__ = ("rows", "sub")

    def __init__(self, rows: Rows = None, sub: tuple = ()) -> None:
        self.rows = rows
        self.sub = sub  # numpy index applied inside each sample

    @property
    def is_scalar(self) -> bool:
        return isinstance(self.rows, int)

    @property
    def row(self) -> int:
        """The row of a one-row index (``is_scalar``)."""
        assert isinstance(self.rows, int), "a one-row index"
        return self.rows

    @property
    def is_full(self) -> bool:
        return self.rows is None

    def resolve(self, length: int) -> int | range | np.ndarray:
        """Absolute rows selected, given the current length of the full tensor/dataset."""
        return range(length) if self.rows is None else self.rows

    def length(self, total: int) -> int:
        rows = self.resolve(total)
        return 1 if isinstance(rows, int) else len(rows)

    def compose(self, item: Any, total: int) -> Index:
        """The index of ``view[item]`` where this view spans ``total`` rows when full."""
        if isinstance(item, tuple):
            if not item:
                return self
            head, rest = item[0], tuple(item[1:])
        else:
            head, rest = item, ()
        if self.is_scalar:  # indexing inside one sample
            if self.sub:
                raise InvalidIndexError(
                    "A sample view can be indexed once; index the numpy() result instead."
                )
            return Index(self.rows, item if isinstance(item, tuple) else (item,))
        current = self.resolve(total)
        assert not isinstance(current, int)  # a scalar index returned above
        rows = _select(current, head)
        if head is Ellipsis and rest:  # t[..., :2]: the index ends at the sample's last axis
            return Index(rows, (slice(None), Ellipsis, *rest))
        if rest and not isinstance(rows, int):
            return Index(rows, (slice(None), *rest))
        return Index(rows, rest)

    def absolute(self, total: int) -> np.ndarray:
        rows = self.resolve(total)
        if isinstance(rows, int):
            return np.array([rows], dtype=np.int64)
        if isinstance(rows, range):
            return np.arange(rows.start, rows.stop, rows.step, dtype=np.int64)
        return rows

    def __repr__(self) -> str:
        return f"Index({self.rows!r}{', ' + repr(self.sub) if self.sub else ''})"


def _select(current: range | np.ndarray, item: Any) -> int | range | np.ndarray:
    n = len(current)
    if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
        i = int(item)
        if i < -n or i >= n:
            raise InvalidIndexError(f"Index {i} is out of range for {n} rows.")
        return int(current[i])
    if isinstance(item, slice):
        return current[item]
    if item is Ellipsis:
        return current
    arr = np.asarray(item)
    if arr.dtype == np.bool_:
        if arr.shape != (n,):
            raise InvalidIndexError(f"A boolean mask must have {n} entries, got {arr.shape}.")
        arr = np.flatnonzero(arr)
    if arr.dtype.kind not in "iu" and arr.size:
        raise InvalidIndexError(
            f"Rows must be selected by int, slice, list of ints or mask, not {item!r}."
        )
    arr = arr.astype(np.int64).reshape(-1)
    if arr.size and (arr.min() < -n or arr.max() >= n):
        raise InvalidIndexError(f"Row indices {item!r} out of range for {n} rows.")
    arr = np.where(arr < 0, arr + n, arr)
    if isinstance(current, range):
        return current.start + arr * current.step
    return current[arr]
