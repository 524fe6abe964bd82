"""``ds.to_dask()``: a dataset view as dask arrays (one per tensor) or a bag of row dicts.

An array is chunked along the tensor's own stored chunks (``cluster_blocks``): each dask
chunk is one task that opens the dataset read-only at the view's version and reads one
stored chunk's rows, so a cluster maps over a dataset it did not write. Arrays need
rows of one shape; a bag takes anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask
import dask.array as da
import dask.bag as db
import numpy as np

from tensorlake.api.dataset import Dataset, core_of
from tensorlake.errors import DatasetError
from tensorlake.integrations.cluster_blocks import BlockPlan, plan_blocks, read_block

__all__ = ["to_dask"]


def to_dask(
    ds: Dataset,
    tensors: Sequence[str] | str | None = None,
    as_bag: bool = False,
    decode_method: dict[str, str] | None = None,
) -> Any:
    """``{tensor: dask.array.Array}`` for the rows of ``ds``, or with ``as_bag`` a
    ``dask.bag.Bag`` of row dicts (a key per tensor, and ``index``: the row's index in
    the dataset)."""
    if as_bag:
        plan = plan_blocks(ds, tensors, decode_method, "to_dask()")
        parts = [dask.delayed(_rows)(plan, b) for b in range(len(plan.blocks))]
        return db.from_delayed(parts) if parts else db.from_sequence([])
    if decode_method:
        raise DatasetError(
            "decode_method applies to to_dask(as_bag=True); arrays hold decoded values."
        )
    names = list(plan_blocks(ds, tensors, None, "to_dask()").names)
    arrays = {}
    for name in names:
        plan = plan_blocks(ds, [name], None, "to_dask()", by=name)
        arrays[plan.names[name]] = _array(ds, name, plan)
    return arrays


def _array(ds: Dataset, name: str, plan: BlockPlan) -> Any:
    meta = core_of(ds).engine(name).meta
    column = plan.names[name]
    if meta.dtype in (None, "str", "json") or meta.min_shape != meta.max_shape:
        raise DatasetError(
            f"Tensor '{column}' has rows of different shapes ({meta.min_shape} to "
            f"{meta.max_shape}) or no array dtype ({meta.htype}), so it is no dask array: "
            "use ds.to_dask(as_bag=True), or pick fixed-shape tensors with tensors=[...]."
        )
    shape, dtype = tuple(meta.min_shape or ()), np.dtype(meta.dtype)
    if not plan.blocks:
        return da.zeros((0, *shape), dtype=dtype)
    parts = [
        da.from_delayed(
            dask.delayed(_values)(plan, b, column), shape=(len(rows), *shape), dtype=dtype
        )
        for b, rows in enumerate(plan.blocks)
    ]
    return da.concatenate(parts) if len(parts) > 1 else parts[0]


def _values(plan: BlockPlan, block: int, column: str) -> np.ndarray:
    return np.asarray(read_block(plan, block)[column])


def _rows(plan: BlockPlan, block: int) -> list[dict[str, Any]]:
    part = read_block(plan, block)
    names = list(part)
    return [{name: part[name][k] for name in names} for k in range(len(part["index"]))]
