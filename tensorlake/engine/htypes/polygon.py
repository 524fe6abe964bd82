"""``polygon``: each row is a list of polygons, each an (M, D) array of M points in D
dimensions (D the same for every polygon of the row), float32 unless ``dtype=`` says
otherwise. Rows read back as lists of (M, D) arrays, never stacked (Deep Lake's
``polygon``: ``aslist`` is always on).

A row is stored as: uint32 count P, P uint32 point counts, then the points (C order);
its shape is (P, max M, D).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tensorlake.compression import compress
from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.htypes.base import (
    Encoded,
    Htype,
    Invalid,
    Pending,
    decompress_row,
    dtype_name,
)
from tensorlake.errors import FormatError

__all__ = ["PolygonHtype"]

_U32 = np.dtype("<u4")


@dataclass(frozen=True, slots=True)
class PolygonHtype(Htype):
    name: str = "polygon"
    ndims: tuple[int, ...] | None = (3,)

    raw_rows: ClassVar[bool] = False
    as_list: ClassVar[bool] = True

    def resolve_dtype(self, dtype: Any) -> str | None:
        return "float32" if dtype is None else dtype_name(dtype)

    def encode(self, meta: TensorMeta, value: Any, pending: Pending) -> Encoded:
        if value is None:
            return b"", (0, 0, 0)
        if isinstance(value, np.ndarray) and value.ndim != 3:
            raise Invalid(
                f"a polygon row is a list of (M, D) arrays or one (P, M, D) array; got an "
                f"array of shape {value.shape}."
            )
        if not isinstance(value, (list, tuple, np.ndarray)):
            raise Invalid(f"a polygon row is a list of polygons, got {type(value).__name__}.")
        polygons = [self._polygon(p, pending) for p in value]
        dims = {p.shape[1] for p in polygons}
        if len(dims) > 1:
            raise Invalid(f"every polygon of a row has the same dimensions, got {sorted(dims)}.")
        lengths = np.array([len(p) for p in polygons], dtype=_U32)
        count = np.array([len(polygons)], dtype=_U32)
        points = b"".join(np.ascontiguousarray(p).tobytes() for p in polygons)
        data = count.tobytes() + lengths.tobytes() + points
        shape = (len(polygons), int(lengths.max(initial=0)), dims.pop() if dims else 0)
        self.check_shape(shape, pending)
        return compress(data, meta.sample_compression), shape

    def _polygon(self, points: Any, pending: Pending) -> np.ndarray:
        try:
            arr = np.asarray(points)
        except ValueError as err:
            raise Invalid(f"a polygon is an (M, D) array of points ({err}).") from None
        if arr.dtype.kind not in "iuf" or arr.ndim != 2 or not arr.size:
            raise Invalid(
                "a polygon is a non-empty (M, D) array of numeric points, e.g. "
                f"[[x1, y1], [x2, y2], [x3, y3]]; got {arr.dtype} of shape {arr.shape}."
            )
        return self.cast(arr, pending)

    def decode(
        self,
        meta: TensorMeta,
        data: memoryview | bytes,
        shape: tuple[int, ...],
        out: np.ndarray | None = None,
    ) -> Any:
        if not len(data):
            return []
        raw = memoryview(decompress_row(meta, data))
        dtype = np.dtype(meta.dtype or "float32")
        count = int(np.frombuffer(raw[:4], dtype=_U32)[0])
        lengths = np.frombuffer(raw[4 : 4 + 4 * count], dtype=_U32).tolist()
        dim = int(shape[2]) if len(shape) == 3 else 0
        points = np.frombuffer(raw[4 + 4 * count :], dtype=dtype)
        if points.size != sum(lengths) * dim:
            raise FormatError(f"tensor '{meta.name}': a polygon row does not match its shape.")
        points = points.reshape(-1, dim).copy() if dim else points.reshape(0, 0)
        out_list, start = [], 0
        for n in lengths:
            out_list.append(points[start : start + n])
            start += n
        return out_list
