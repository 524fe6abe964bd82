"""Decode many stored rows at once: stacked into one array when shapes agree.

Images decode straight into their slot of the output (no per-image allocation, which is
what costs most on machines where fresh pages are expensive), on a small thread pool:
Pillow releases the GIL while decoding.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.htypes.base import IMAGE_COMPRESSIONS, Encoded
from tensorlake.engine.htypes.registry import get_htype
from tensorlake.engine.tensor.reader import widen_empty
from tensorlake.errors import DatasetError

__all__ = ["decode_batch", "set_decode_threads", "uniform_shape"]

_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_threads: int | None = None  # None: one per core, up to 4


def set_decode_threads(threads: int) -> None:
    """Decode on ``threads`` threads in this process: a loader's worker process, one of
    several sharing the cores, decodes on its share of them (more threads than cores
    only switch between each other)."""
    global _pool, _threads
    threads = max(1, threads)
    if threads != _threads:
        if _pool is not None and _pool_pid == os.getpid():
            _pool.shutdown(wait=False)
        _threads, _pool = threads, None


def _decode_pool() -> ThreadPoolExecutor:
    """A process-wide pool, recreated after a fork (threads do not survive one)."""
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        threads = _threads if _threads is not None else min(4, os.cpu_count() or 1)
        _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tl-decode")
        _pool_pid = os.getpid()
    return _pool


def uniform_shape(shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...] | None:
    if not shapes:
        return None
    first = shapes[0]
    return first if all(s == first for s in shapes) else None


def decode_batch(
    meta: TensorMeta,
    stored: Sequence[Encoded],
    aslist: bool,
    alloc: Callable[[tuple[int, ...], np.dtype], np.ndarray] | None = None,
) -> Any:
    """Values of many rows: a list (``aslist``) or one stacked array (made by
    ``alloc(shape, dtype)`` when given: a loader's worker puts it in shared memory)."""
    htype = get_htype(meta.htype)
    decode = htype.decode
    if htype.scalar:
        values = [decode(meta, data, shape) for data, shape in stored]
        if aslist:
            return values
        return htype.stack(values).reshape(len(values), 1)
    shapes = [shape for _, shape in stored]
    widened = widen_empty(meta, shapes)  # empty rows written before the rank was known
    if widened is not shapes:
        shapes, stored = widened, [(d, s) for (d, _), s in zip(stored, widened)]
    shape = uniform_shape(shapes)
    if not stored and meta.min_shape is not None and meta.min_shape == meta.max_shape:
        shape = meta.min_shape  # an empty selection of a fixed-shape tensor keeps its shape
    images = meta.sample_compression in IMAGE_COMPRESSIONS
    threaded = images and len(stored) > 1 and _threads != 1
    if aslist or htype.as_list:  # polygons are lists of arrays: never stacked
        if threaded:
            values = list(_decode_pool().map(lambda s: decode(meta, s[0], s[1]), stored))
        else:
            values = [decode(meta, data, shape) for data, shape in stored]
        if htype.is_sequence:  # Deep Lake: per row, a list of its items
            return [list(v) if isinstance(v, np.ndarray) else v for v in values]
        return values
    if shape is None and stored:
        raise DatasetError(
            f"Tensor '{meta.name}' has samples of different shapes ({_shape_range(shapes)}) "
            "in this selection; use .numpy(aslist=True) to get a list of arrays."
        )
    full_shape = (len(stored), *(shape or ()))
    if meta.dtype in ("str", "json"):  # sequences of text or json: numpy finds the width
        return np.stack([decode(meta, d, s) for d, s in stored]).reshape(full_shape)
    dtype = np.dtype(meta.dtype or "float64")
    out = alloc(full_shape, dtype) if alloc is not None else np.empty(full_shape, dtype=dtype)
    if threaded:
        assert shape is not None  # rows of one shape (checked above)
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
