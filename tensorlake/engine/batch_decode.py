"""Decode many stored rows at once: stacked into one array when shapes agree.

Images decode straight into their slot of the output (no per-image allocation, which is
what costs most on machines where fresh pages are expensive), on a small thread pool:
Pillow releases the GIL while decoding.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from tensorlake.engine.htypes import IMAGE_COMPRESSIONS
from tensorlake.engine.manifest import TensorMeta
from tensorlake.engine.sample_codec import decode
from tensorlake.errors import DatasetError

Stored = tuple[bytes | memoryview, tuple[int, ...]]
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0


def _decode_pool() -> ThreadPoolExecutor:
    """A process-wide pool, recreated after a fork (threads do not survive one)."""
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        _pool = ThreadPoolExecutor(
            max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="tl-decode"
        )
        _pool_pid = os.getpid()
    return _pool


def object_array(values: Sequence[Any], htype: str) -> np.ndarray:
    """A 1-D array of text (``str`` dtype) or json (``object``) values, never nested."""
    if htype == "text":
        return np.array(values, dtype=str)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):  # lists must stay single objects, not a new axis
        out[i] = v
    return out


def uniform_shape(shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...] | None:
    if not shapes:
        return None
    first = shapes[0]
    return first if all(s == first for s in shapes) else None


def decode_batch(meta: TensorMeta, stored: Sequence[Stored], aslist: bool) -> Any:
    """Values of many rows: a list (``aslist``) or one stacked array."""
    if meta.htype in ("text", "json"):
        values = [decode(meta, data, shape) for data, shape in stored]
        if aslist:
            return values
        return object_array(values, meta.htype).reshape(len(values), 1)
    shapes = [shape for _, shape in stored]
    shape = uniform_shape(shapes)
    if not stored and meta.min_shape is not None and meta.min_shape == meta.max_shape:
        shape = meta.min_shape  # an empty selection of a fixed-shape tensor keeps its shape
    images = meta.sample_compression in IMAGE_COMPRESSIONS
    if aslist:
        if images and len(stored) > 1:
            return list(_decode_pool().map(lambda s: decode(meta, s[0], s[1]), stored))
        return [decode(meta, data, shape) for data, shape in stored]
    if shape is None and stored:
        raise DatasetError(
            f"Tensor '{meta.name}' has samples of different shapes ({_shape_range(shapes)}) "
            "in this selection; use .numpy(aslist=True) to get a list of arrays."
        )
    out = np.empty((len(stored), *(shape or ())), dtype=np.dtype(meta.dtype or "float64"))
    if images and len(stored) > 1:
        list(
            _decode_pool().map(
                lambda k: decode(meta, stored[k][0], shape, out=out[k, ...]), range(len(stored))
            )
        )
    else:
        for k, (data, shp) in enumerate(stored):
            decode(meta, data, shp, out=out[k, ...])
    return out


def _shape_range(shapes: Sequence[tuple[int, ...]]) -> str:
    lo = tuple(min(s) for s in zip(*shapes))
    hi = tuple(max(s) for s in zip(*shapes))
    return f"from {lo} to {hi}"
