"""``Tensor``: one column of a dataset, or a view of some of its rows."""

from __future__ import annotations

import builtins
import operator
from collections.abc import Callable, Iterator, Sequence
from numbers import Integral
from typing import Any

import numpy as np

from tensorlake.api.hooks import integration
from tensorlake.api.index import Index
from tensorlake.api.info import Info
from tensorlake.api.pickling import PickledDataset, pickled, reopen
from tensorlake.api.shape_interval import ShapeInterval
from tensorlake.api.summary import tensor_lines
from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.engine.core.rows import check_pop_rows, clear_tensor, pop_rows
from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.htypes.base import Htype
from tensorlake.engine.htypes.registry import get_htype
from tensorlake.engine.tensor.batch_decode import decode_batch
from tensorlake.engine.tensor.engine import TensorEngine
from tensorlake.errors import DatasetArgumentError, DatasetError, EmptyTensorError

__all__ = ["Tensor"]


class Tensor:
    """A tensor (column) of a dataset; indexing it gives a view of some rows.

    Example::

        ds.boxes[0].numpy()            # (N, 4) float32 boxes of row 0
        ds.images[10:20].numpy()       # (10, H, W, 3) when the shapes agree
        ds.masks[:5].numpy(aslist=True)
        ds.labels[3] = [1, 2]          # update a row
    """

    def __init__(
        self, core: DatasetCore, name: str, index: Index | None = None, pad: bool = False
    ) -> None:
        self._core = core
        self.key = name
        self._index = index or Index()
        self._pad = pad  # rows past the end read as empty rows (ds.max_view)
        self._written_in_place = False  # set by ``t[i] += x`` for the assignment after it

    def __reduce__(self) -> tuple[Any, tuple[PickledDataset, str]]:
        """Pickled by reference, as a dataset is (``api/pickling.py``)."""
        return _unpickle_tensor, (pickled(self._core, self._index, ""), self.key)

    # -- identity -------------------------------------------------------------------
    @property
    def _engine(self) -> TensorEngine:
        return self._core.engine(self.key)

    @property
    def meta(self) -> TensorMeta:
        return self._engine.meta

    @property
    def _htype(self) -> Htype:
        return get_htype(self._engine.meta.htype)

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def htype(self) -> str:
        return self.meta.htype

    @property
    def dtype(self) -> np.dtype | None:
        d = self.meta.dtype
        if d is None:
            return None
        if d == "json":
            return np.dtype(object)
        return np.dtype(d)

    @property
    def sample_compression(self) -> str | None:
        return self.meta.sample_compression

    @property
    def chunk_compression(self) -> str | None:
        return self.meta.chunk_compression

    @property
    def info(self) -> Info:
        name, core = self.key, self._core
        return Info(self.meta.info, lambda: core.info_changed(name), core.check_writable)

    @property
    def base_htype(self) -> str:
        return self.meta.htype.split(".")[0]

    @property
    def is_sequence(self) -> bool:
        """Whether each row is a sequence of items (``sequence[...]``)."""
        return self._htype.is_sequence

    @property
    def is_link(self) -> bool:
        """Whether rows name objects elsewhere (``link[...]``)."""
        return self._htype.is_link

    @property
    def verify(self) -> bool:
        """Whether appended links are fetched and checked (link tensors created with
        ``verify=True``, the default); always False for other tensors, as in Deep Lake.
        ``verify_links()`` checks the linked objects now."""
        return self.is_link and bool(self.meta.extra.get("verify", False))

    @property
    def hidden(self) -> bool:
        """Whether the tensor is hidden (``create_tensor(..., hidden=True)`` and the
        companions ``_<name>_shape`` ...): left out of ``ds.tensors``, iteration and loaders."""
        return self.meta.hidden

    def path(self, aslist: bool = True, fetch_chunks: bool = False) -> Any:
        """The URLs of a link tensor's rows: one ``str`` for one row, else a list
        (``aslist``) or an ``(N, 1)`` array of str (the shape a text column reads as).
        ``fetch_chunks`` is accepted for Deep Lake compatibility.

        Example::

            ds.images[:2].path()      # ['s3://raw/img/0.jpg', 's3://raw/img/1.jpg']
        """
        self._require_link("path")
        urls = self.links()
        if self._index.is_scalar:
            return urls[0]
        return urls if aslist else np.asarray(urls, dtype=str).reshape(-1, 1)

    def creds_key(self) -> str | None:
        """The creds key of one link row (``None``: read without credentials).

        Example::

            ds.images[0].creds_key()     # 'raw'
        """
        self._require_link("creds_key")
        if not self._index.is_scalar or self._index.sub:
            raise DatasetArgumentError(
                f"creds_key() is about one row; index one row of '{self.key}' first, e.g. "
                f"ds.{self.name}[0].creds_key()."
            )
        return self._core.link_reader(self.key).links(np.array([self._index.row]))[0].creds_key

    # -- size and shape ---------------------------------------------------------------
    @property
    def num_samples(self) -> int:
        return self._engine.num_rows

    def __len__(self) -> int:
        return self._index.length(self.num_samples)

    @property
    def is_sequence_view(self) -> bool:
        return not self._index.is_scalar

    @property
    def shape(self) -> tuple[int | None, ...]:
        """Shape of the view; ``None`` marks a dimension that differs between rows."""
        engine = self._engine
        is_link = self._htype.is_link
        read_shapes = engine.read_shapes
        if is_link:
            reader = self._core.link_reader(self.key)
            read_shapes = lambda rows: reader.shapes(np.asarray(rows))  # noqa: E731
        if self._index.is_scalar:
            if self._only_empty_rows():
                return ()  # a row of a tensor no row has given a shape yet (Deep Lake's)
            shape = read_shapes([self._index.row])[0]
            return _sub_shape(shape, self._index.sub)
        n = len(self)
        if self._index.is_full and not is_link:
            meta = engine.meta
            if meta.min_shape is None:
                return (n,)
            dims = tuple(
                a if a == b else None for a, b in zip(meta.min_shape, meta.max_shape or ())
            )
            return (n, *dims)
        shapes = read_shapes(self._rows())
        if not shapes:
            return (0,)
        if self._index.sub:  # ds.x[1:4, 3:7]: each row's shape after the index inside it
            shapes = [_sub_shape(s, self._index.sub[1:]) for s in shapes]
        dims = tuple(s[0] if len(set(s)) == 1 else None for s in zip(*shapes))
        return (n, *dims)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int | None:
        """The number of elements of the view (rows times each row's), ``None`` when
        rows differ in shape."""
        total = 1
        for dim in self.shape:
            if dim is None:
                return None
            total *= dim  # Python ints: no overflow
        return total

    @property
    def shape_interval(self) -> ShapeInterval:
        """The smallest and largest shape of this view's rows, length included:
        ``(2, 10, 10:15)`` for rows (10, 10) and (10, 15); from the meta for a whole
        tensor, from the chunk headers for a view."""
        if self._index.is_scalar:
            shape = tuple(d or 0 for d in self.shape)
            return ShapeInterval(shape, shape)
        n, meta = len(self), self.meta
        if (self._index.is_full and not self.is_link) or n == 0:
            if meta.min_shape is None or meta.max_shape is None:
                return ShapeInterval((n,), (n,))
            return ShapeInterval((n, *meta.min_shape), (n, *meta.max_shape))
        shapes = self.shapes()
        if self._index.sub:  # pragma: no cover - shapes() refuses sample indexing
            raise DatasetArgumentError("shape_interval works on rows: index rows only.")
        return ShapeInterval(
            (n, *(int(d) for d in shapes.min(axis=0))), (n, *(int(d) for d in shapes.max(axis=0)))
        )

    @property
    def is_dynamic(self) -> bool:
        """Whether the rows of this view differ in shape."""
        return self.shape_interval.is_dynamic

    @property
    def is_empty_tensor(self) -> bool:
        """Whether no row has a shape yet: no rows, or only empty ones (``None``
        appended); a link tensor whose first row links nothing."""
        if self.meta.max_shape is not None:
            return False
        if self.is_link and self.num_samples:
            reader = self._core.link_reader(self.key)
            return not reader.links(np.array([0]))[0].url
        return True

    def shapes(self) -> np.ndarray:
        """The shape of each row of this view: an int array ``(N, ndim)`` (``(1, ndim)``
        for one row), read from the chunk headers (no sample is decoded), or from the
        meta when every row has the same shape.

        Example::

            ds.images.shapes()        # array([[480, 640, 3], [375, 500, 3], ...])
        """
        if self._index.sub:
            raise DatasetArgumentError(
                "shapes() works on rows, not on parts of samples: index rows only."
            )
        engine = self._engine
        meta = engine.meta
        rows = np.atleast_1d(self._rows())
        fixed = meta.min_shape is not None and meta.min_shape == meta.max_shape
        if fixed and not self._htype.is_link:
            assert meta.min_shape is not None
            return np.tile(np.asarray(meta.min_shape, dtype=np.int64), (len(rows), 1))
        if self._htype.is_link:
            found = self._core.link_reader(self.key).shapes(rows)
        else:
            found = engine.read_shapes(rows)
        ndim = len(meta.min_shape) if meta.min_shape is not None else 0
        if not len(found):
            return np.zeros((0, ndim), dtype=np.int64)
        return np.asarray([tuple(s) for s in found], dtype=np.int64).reshape(len(found), -1)

    def _rows(self) -> np.ndarray:
        return self._index.absolute(self.num_samples)

    @property
    def sample_indices(self) -> builtins.list[int]:
        """The tensor's row numbers this view selects (``[3]`` for ``t[3]``)."""
        return np.atleast_1d(self._rows()).tolist()

    @property
    def sample_info(self) -> Any:
        """What is known of each row's source, from the sample-info companion
        (``create_sample_info_tensor=True``; links get one by default): a dict for one row
        (a list of dicts, one per item, for a sequence row), a list of those for several,
        ``None`` when the tensor keeps no sample info.

        Example::

            ds.images[0].sample_info  # {'format': 'jpeg', 'shape': [480, 640, 3], 'filename': ...}
        """
        name = self.meta.extra.get("info_tensor")
        if not name:
            return None
        rows = np.atleast_1d(self._rows())
        infos = Tensor(self._core, name, Index(rows)).numpy(aslist=True)
        if self.is_sequence:
            infos = [(v or {}).get("items", []) for v in infos]
        return infos[0] if self._index.is_scalar else list(infos)

    # -- indexing ---------------------------------------------------------------------
    def __getitem__(self, item: Any) -> Tensor:
        index = self._index.compose(item, self.num_samples)
        return Tensor(self._core, self.key, index, self._pad)

    def __iter__(self) -> Iterator[Tensor]:
        for i in range(len(self)):
            yield self[i]

    def __setitem__(self, item: Any, value: Any) -> None:
        if isinstance(value, Tensor) and value._written_in_place:
            value._written_in_place = False  # ``t[i] += 1``: the rows are written already
            return
        if self._past_the_end(item):
            self._pad_and_append(int(item), value)
            return
        view = self if item is Ellipsis else self[item]
        if view._index.sub:
            raise DatasetError(
                "Assigning to part of a sample is not supported; assign the whole row."
            )
        rows = view._rows()
        values = [value] if view._index.is_scalar else value
        if not view._index.is_scalar and (
            isinstance(values, (str, bytes)) or len(values) != len(rows)
        ):
            raise DatasetError(f"{len(rows)} rows selected; give a sequence of {len(rows)} values.")
        self._core.update_rows(self.key, rows.tolist(), list(values))

    def _past_the_end(self, item: Any) -> bool:
        """Whether ``t[item] = v`` names one row at or past the end of the whole tensor."""
        return (
            isinstance(item, Integral)
            and not isinstance(item, bool)
            and self._index.is_full
            and int(item) >= self.num_samples
        )

    def _pad_and_append(self, row: int, value: Any) -> None:
        """``t[row] = value`` past the end, as in Deep Lake: the rows between the end and
        ``row`` are empty rows (``None`` appended), then ``value`` is row ``row``. Other
        tensors keep their length."""
        if self.is_sequence:
            raise DatasetError(
                f"Row {row} is past the end of sequence tensor '{self.key}' "
                f"({self.num_samples} rows); append rows to a sequence tensor instead."
            )
        padding: builtins.list[Any] = [None] * (row - self.num_samples)
        self._core.append_rows({self.key: [*padding, value]}, skip_ok=True)

    # -- reads ------------------------------------------------------------------------
    def numpy(self, aslist: bool = False, fetch_chunks: bool = False) -> Any:
        """The rows as one array (``(N, *shape)``) or, with ``aslist=True``, a list of arrays.

        Ragged selections need ``aslist=True``. Text rows are ``str``, json rows objects.
        ``fetch_chunks`` is accepted for Deep Lake compatibility (whole chunks are always
        fetched when more than one row of a chunk is read).
        """
        if self._pad and int(np.max(self._rows(), initial=-1)) >= self.num_samples:
            return self._padded(aslist)
        engine = self._engine
        meta = engine.meta
        htype = get_htype(meta.htype)
        self._check_not_empty(meta, htype)
        if htype.is_link:
            rows = np.atleast_1d(self._rows())
            reader = self._core.link_reader(self.key)
            values = reader.read(rows, aslist or self._index.is_scalar)
            if self._index.is_scalar:
                return values[0][self._index.sub] if self._index.sub else values[0]
            return self._sub(values, aslist)
        if self._index.is_scalar:
            data, shape = engine.read_stored([self._index.row])[0]
            value = htype.decode(meta, data, shape)
            if htype.scalar:
                value = htype.stack([value])
            return value[self._index.sub] if self._index.sub else value
        rows = self._rows()
        fast = None
        if not htype.scalar and self.dtype is not None:
            read = engine.read_ragged if aslist else engine.read_fixed
            fast = read(rows, self.dtype)
        values = fast if fast is not None else decode_batch(meta, engine.read_stored(rows), aslist)
        return self._sub(values, aslist)

    def _only_empty_rows(self) -> bool:
        """Whether this is an array tensor holding only empty rows: no row has fixed a
        shape or dtype to read them as (text, json and link rows have their own empty
        values)."""
        htype = self._htype
        return self.meta.max_shape is None and not htype.scalar and not htype.is_link

    def _check_not_empty(self, meta: TensorMeta, htype: Htype) -> None:
        """``EmptyTensorError`` for a read of rows of a tensor of only empty rows (Deep
        Lake's rule)."""
        if meta.max_shape is not None or htype.scalar or htype.is_link or not len(self):
            return
        raise EmptyTensorError(
            f"Tensor '{self.key}' holds only empty rows (None appended), so they have no "
            "shape or dtype to read as; append one non-empty sample first."
        )

    def _padded(self, aslist: bool) -> Any:
        """``numpy()`` of a ``max_view`` reaching past this tensor's end: the rows it
        lacks are empty (no elements, the tensor's rank and dtype; ``None`` for text and
        json), as Deep Lake pads them."""
        rows = np.atleast_1d(self._rows())
        present = rows < self.num_samples
        values: list[Any] = [None] * len(rows)
        if present.any():
            found = Tensor(self._core, self.key, Index(rows[present])).numpy(aslist=True)
            for pos, value in zip(np.flatnonzero(present).tolist(), found):
                values[pos] = value
        meta = self.meta
        if meta.dtype not in (None, "str", "json"):
            ndim = len(meta.min_shape) if meta.min_shape is not None else 1
            for pos in np.flatnonzero(~present).tolist():
                values[pos] = np.zeros((0,) * ndim, dtype=np.dtype(meta.dtype))
        if self._index.is_scalar:
            value = values[0]
            return value[self._index.sub] if self._index.sub and value is not None else value
        if aslist:
            return self._sub(values, True)
        raise DatasetError(
            f"Rows {rows[~present].tolist()[:5]} of this view are past the end of "
            f"'{self.key}' ({self.num_samples} rows) and read as empty rows of another "
            "shape: use .numpy(aslist=True)."
        )

    def _sub(self, values: Any, aslist: bool) -> Any:
        """Apply indexing inside samples (``t[a:b, 10:20]``) to rows already read."""
        sub = self._index.sub
        if sub:
            values = [v[sub[1:]] for v in values] if aslist else values[sub]
        return values

    def data(self, aslist: bool = False) -> dict[str, Any]:
        """Rows as Python-friendly values: ``{"value": ...}``, plus ``"text"`` for class labels."""
        htype = self._htype
        one_row = self._index.is_scalar
        if htype.scalar:
            value = self.numpy(aslist=True) if not one_row else self.numpy()[0]
        else:
            value = self.numpy(aslist=aslist)
        return htype.data(value, self.meta, one_row)

    def text(self) -> str | list[str]:
        if self.meta.htype != "text":
            raise DatasetError(f"text() is for text tensors; '{self.key}' is {self.meta.htype}.")
        return self.data()["value"]

    def dict(self) -> Any:
        if self.meta.htype != "json":
            raise DatasetError(f"dict() is for json tensors; '{self.key}' is {self.meta.htype}.")
        return self.data()["value"]

    def list(self) -> builtins.list[Any]:
        return self.numpy(aslist=True) if not self._index.is_scalar else [self.numpy()]

    def tobytes(self) -> bytes:
        """The stored bytes of one row (e.g. the JPEG file as appended; for a link row
        the linked object's bytes). Raises ``DatasetArgumentError`` (a ``ValueError``,
        as in Deep Lake) on a view of several rows or of part of a sample."""
        if not self._index.is_scalar or self._index.sub:
            raise DatasetArgumentError(
                f"tobytes() reads exactly one row; this view of '{self.key}' selects "
                f"{len(self) if not self._index.is_scalar else 'part of one'}"
                f"{' rows' if not self._index.is_scalar else ' row'}. Index one row first, "
                "e.g. ds.images[3].tobytes()."
            )
        if self._htype.is_link:
            return self._core.link_reader(self.key).fetch(np.array([self._index.row]))[0]
        data, _ = self._engine.read_stored([self._index.row])[0]
        return bytes(data)

    # -- links ------------------------------------------------------------------------
    def verify_links(self) -> builtins.dict[str, Any]:
        """Check the linked objects of these rows against the versions recorded at
        ingest: ``{"checked": n, "missing": [{"row", "url"}], "changed": [...]}``."""
        self._require_link("verify_links")
        return self._core.link_reader(self.key).verify(np.atleast_1d(self._rows()))

    def links(self) -> builtins.list[str]:
        """The URLs these rows link to."""
        self._require_link("links")
        found = self._core.link_reader(self.key).links(np.atleast_1d(self._rows()))
        return [x.url for x in found]

    def _require_link(self, what: str) -> None:
        if not self._htype.is_link:
            raise DatasetError(f"{what}() is for link tensors; '{self.key}' is {self.meta.htype}.")

    # -- writes -----------------------------------------------------------------------
    def append(self, value: Any) -> None:
        self.extend([value])

    def pop(self, index: int | builtins.list[int] | None = None) -> None:
        """Remove row ``index`` (default: the last; a list: several) of this tensor only;
        later rows move up. Errors as ``Dataset.pop``."""
        self._check_full("pop")
        rows = check_pop_rows(index, self.num_samples, f"tensor '{self.key}'")
        pop_rows(self._core, {self.key: rows})

    def clear(self) -> None:
        """Remove every row of this tensor (its meta and info stay)."""
        self._check_full("clear")
        clear_tensor(self._core, self.key)

    def _check_full(self, op: str) -> None:
        if not self._index.is_full:
            raise DatasetError(f"{op}() is not allowed on a view; call it on the tensor itself.")

    def extend(self, values: Sequence[Any] | np.ndarray) -> None:
        if not self._index.is_full:
            raise DatasetError("Cannot append to a view; append to the tensor itself.")
        if isinstance(values, (str, bytes)):
            raise DatasetError("extend() takes a sequence of samples; use append() for one sample.")
        rows = [None if isinstance(v, Tensor) and v._only_empty_rows() else v for v in values]
        self._core.append_rows({self.key: rows}, skip_ok=True)

    def summary(self) -> None:
        """Print the tensor and a line of its htype, shape, dtype and compression."""
        print(self)
        print("\n".join(tensor_lines({self.key: self})))

    # -- in-place arithmetic (``ds.x[i] += 1``, ``ds.x *= 2``), as in Deep Lake ----------
    def _in_place(self, op: Callable[[Any, Any], Any], other: Any) -> Tensor:
        """Update the rows of this view to ``op(rows, other)``; Python then assigns the
        result back (``t[i] = result``), which ``__setitem__`` skips."""
        if self._index.sub:
            raise DatasetError("In-place arithmetic updates whole rows; index rows only.")
        other = other.numpy() if isinstance(other, Tensor) else other
        if self._index.is_scalar:
            self._core.update_rows(self.key, [self._index.row], [op(self.numpy(), other)])
        else:
            rows = np.atleast_1d(self._rows()).tolist()
            try:
                values = list(op(self.numpy(), other))
            except DatasetError:  # rows of different shapes: one at a time
                values = [op(v, other) for v in self.numpy(aslist=True)]
            self._core.update_rows(self.key, rows, values)
        self._written_in_place = True
        return self

    def __iadd__(self, other: Any) -> Tensor:
        return self._in_place(operator.add, other)

    def __isub__(self, other: Any) -> Tensor:
        return self._in_place(operator.sub, other)

    def __imul__(self, other: Any) -> Tensor:
        return self._in_place(operator.mul, other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self._in_place(operator.truediv, other)

    def __ifloordiv__(self, other: Any) -> Tensor:
        return self._in_place(operator.floordiv, other)

    def __imod__(self, other: Any) -> Tensor:
        return self._in_place(operator.mod, other)

    def __ipow__(self, other: Any) -> Tensor:
        return self._in_place(operator.pow, other)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """``np.asarray(ds.x)``: the rows as one array (``numpy()``)."""
        value = np.asarray(self.numpy())
        return value.astype(dtype) if dtype is not None and value.dtype != dtype else value

    def _repr_html_(self) -> str:
        return integration("notebook.html").tensor_html(self)

    def __repr__(self) -> str:
        idx = "" if self._index.is_full else f", index={self._index.rows!r}"
        return f"Tensor(key={self.key!r}, htype={self.htype!r}, shape={self.shape}{idx})"


def _sub_shape(shape: tuple[int, ...], sub: tuple) -> tuple[int, ...]:
    """The shape of a sample of ``shape`` indexed by ``sub``, computed without data."""
    if not sub:
        return tuple(shape)
    return np.broadcast_to(np.empty((), np.bool_), shape)[sub].shape


def _unpickle_tensor(state: PickledDataset, key: str) -> Tensor:
    core, index = reopen(state)
    return Tensor(core, key, index)
