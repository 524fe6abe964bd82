"""Reading a batch of rows from every tensor a loader yields, decoded as asked.

Each tensor's rows are fetched together: whole chunks where most of a chunk is wanted
(or the chunk is small), else one ranged read per run of consecutive rows, all
concurrently, checksums verified. Images of one shape decode in parallel straight into
one output array (an ``alloc`` may place it in shared memory for the process that will
receive it). ``read(rows, ahead=next_rows)`` starts fetching the next batch's bytes in
the background, so a remote store's latency hides behind decoding.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from PIL import Image

from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.engine.htypes.base import IMAGE_COMPRESSIONS, Encoded
from tensorlake.engine.htypes.registry import get_htype
from tensorlake.engine.tensor.batch_decode import decode_batch, uniform_shape
from tensorlake.errors import DatasetError

__all__ = ["DECODE_METHODS", "Alloc", "BatchReader", "check_decode_methods"]

DECODE_METHODS = ("numpy", "tobytes", "pil", "data")
SMALL_ROW_BYTES = 4096  # tensors of smaller rows are read whole-chunk, vectorised

Alloc = Callable[[tuple[int, ...], np.dtype], np.ndarray]


def check_decode_methods(
    core: DatasetCore, tensors: Sequence[str], decode_method: dict[str, str] | None
) -> dict[str, str]:
    """``decode_method`` checked against the tensors (full names): a method per tensor."""
    methods = dict.fromkeys(tensors, "numpy")
    for name, method in (decode_method or {}).items():
        full = next((t for t in tensors if t == name or t.endswith("/" + name)), None)
        if full is None:
            raise DatasetError(
                f"decode_method names '{name}', which is not among the tensors read: "
                f"{list(tensors)}."
            )
        if method not in DECODE_METHODS:
            raise DatasetError(
                f"decode_method '{method}' for '{name}' is unknown; use one of {DECODE_METHODS}."
            )
        meta = core.engine(full).meta
        compression = meta.sample_compression
        if method == "pil" and not (
            compression in IMAGE_COMPRESSIONS or get_htype(meta.htype).is_link
        ):
            raise DatasetError(
                f"decode_method 'pil' needs JPEG or PNG images; '{name}' is {meta.htype} "
                f"with sample_compression={compression!r}. Use 'numpy'."
            )
        methods[full] = method
    return methods


class BatchReader:
    """Rows of several tensors of one dataset version, as ``{tensor: values}``."""

    def __init__(self, core: DatasetCore, methods: dict[str, str], pad: bool = False) -> None:
        self._core = core
        self._methods = methods
        self._pad = pad
        self._pool: ThreadPoolExecutor | None = None
        self._ahead: tuple[bytes, Future[dict[str, list[Encoded]]]] | None = None
        self._small: dict[str, bool] = {}

    # -- the batch --------------------------------------------------------------------
    def read(
        self, rows: np.ndarray, alloc: Alloc | None = None, ahead: np.ndarray | None = None
    ) -> dict[str, Any]:
        """Each tensor's values for ``rows``: one stacked array when every row is a
        decoded array of one shape, else a list with a value per row. ``ahead``: the
        rows of the next batch, whose bytes are fetched in the background meanwhile."""
        stored = self._take_ahead(rows)
        self._prefetch(ahead)
        return {
            name: self._read_tensor(name, method, rows, stored.get(name), alloc)
            for name, method in self._methods.items()
        }

    def _prefetch(self, rows: np.ndarray | None) -> None:
        if rows is None or not len(rows) or self._core.storage.memory_resident:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tl-prefetch")
        rows = np.asarray(rows, dtype=np.int64)
        self._ahead = (rows.tobytes(), self._pool.submit(self._fetch, rows))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._ahead = None

    # -- fetching -----------------------------------------------------------------------
    def _fetchable(self, name: str, rows: np.ndarray) -> bool:
        engine = self._core.engine(name)
        return (
            not get_htype(engine.meta.htype).is_link
            and not self._small_rows(name)
            and (not len(rows) or int(rows.max()) < engine.num_rows)
        )

    def _fetch(self, rows: np.ndarray) -> dict[str, list[Encoded]]:
        return {
            name: self._core.engine(name).read_stored(rows)
            for name in self._methods
            if self._fetchable(name, rows)
        }

    def _take_ahead(self, rows: np.ndarray) -> dict[str, list[Encoded]]:
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return {}
        key, future = ahead
        if key != np.asarray(rows, dtype=np.int64).tobytes():
            future.cancel()
            return {}
        return future.result()

    def _small_rows(self, name: str) -> bool:
        """Whether ``name`` holds small raw rows (labels, boxes): read vectorised from
        whole chunks, which are small and cached."""
        if name not in self._small:
            self._small[name] = self._has_small_rows(name)
        return self._small[name]

    def _has_small_rows(self, name: str) -> bool:
        engine = self._core.engine(name)
        meta, table = engine.meta, engine.table
        if meta.sample_compression is not None or meta.chunk_compression is not None:
            return False
        if get_htype(meta.htype).scalar or not table.num_rows:
            return False
        return int(table.column("nbytes").sum()) <= SMALL_ROW_BYTES * table.num_rows

    # -- one tensor -----------------------------------------------------------------------
    def _read_tensor(
        self,
        name: str,
        method: str,
        rows: np.ndarray,
        stored: list[Encoded] | None,
        alloc: Alloc | None,
    ) -> Any:
        engine = self._core.engine(name)
        meta = engine.meta
        htype = get_htype(meta.htype)
        present = rows < engine.num_rows
        if not present.all():
            if not self._pad:
                raise DatasetError(
                    f"Tensor '{name}' has {engine.num_rows} rows; row {int(rows.max())} was "
                    "asked for. Pass pad_tensors=True to pad shorter tensors with empty rows."
                )
            return self._padded(name, method, rows, present)
        if htype.is_link:
            reader = self._core.link_reader(name)
            if method in ("tobytes", "pil"):
                raw = reader.fetch(rows)
                return [bytes(b) if method == "tobytes" else _pil(b) for b in raw]
            values = reader.read(rows, aslist=True)
            return _stacked(values, alloc) if method == "numpy" else _data(htype, meta, values)
        if method == "numpy" and self._small_rows(name) and meta.dtype is not None:
            dtype = np.dtype(meta.dtype)
            fixed = engine.read_fixed(rows, dtype)
            if fixed is not None:
                return fixed
            ragged = engine.read_ragged(rows, dtype)
            if ragged is not None:
                return _stacked(ragged, alloc)
        if stored is None:
            stored = engine.read_stored(rows)
        if method == "tobytes":
            return [bytes(data) for data, _ in stored]
        if method == "pil":
            return [_pil(data) for data, _ in stored]
        if htype.scalar:
            values = decode_batch(meta, stored, aslist=True)
            return values if method == "numpy" else _data(htype, meta, values)
        shape = uniform_shape([s for _, s in stored])
        if method == "numpy" and shape is not None:
            return decode_batch(meta, stored, aslist=False, alloc=alloc)
        values = decode_batch(meta, stored, aslist=True)
        return values if method == "numpy" else _data(htype, meta, values)

    def _padded(self, name: str, method: str, rows: np.ndarray, present: np.ndarray) -> list[Any]:
        """Rows past the end of a shorter tensor as empty values (``pad_tensors``)."""
        meta = self._core.engine(name).meta
        values: list[Any] = [None] * len(rows)
        if present.any():
            found = self._read_tensor(name, method, rows[present], None, None)
            for pos, value in zip(np.flatnonzero(present).tolist(), found):
                values[pos] = value
        ndim = len(meta.min_shape) if meta.min_shape is not None else 1
        dtype = np.dtype(meta.dtype) if meta.dtype not in (None, "json", "str") else None
        for pos in np.flatnonzero(~present).tolist():
            if method == "tobytes":
                values[pos] = b""
            elif dtype is None:
                values[pos] = None
            else:
                values[pos] = np.zeros((0,) * ndim, dtype=dtype)
        return values


def _pil(data: bytes | memoryview) -> Image.Image:
    image = Image.open(io.BytesIO(bytes(data)))
    image.load()
    return image


def _data(htype: Any, meta: Any, values: list[Any]) -> list[Any]:
    return [htype.data(v, meta, True) for v in values]


def _stacked(values: list[Any], alloc: Alloc | None) -> Any:
    """``values`` as one array when they are arrays of one shape and dtype, else as is."""
    if not values or not all(isinstance(v, np.ndarray) for v in values):
        return values
    shape = uniform_shape([v.shape for v in values])
    dtype = values[0].dtype
    if shape is None or any(v.dtype != dtype for v in values):
        return values
    out = alloc((len(values), *shape), dtype) if alloc else np.empty((len(values), *shape), dtype)
    for k, v in enumerate(values):
        out[k] = v
    return out
