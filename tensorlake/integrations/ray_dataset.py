"""``ds.to_ray()``: a dataset view as a ``ray.data.Dataset`` read in parallel by Ray.

Each chunk-aligned block of rows (``cluster_blocks``) is one read task: Ray's workers
open the dataset themselves, read-only, at the view's version, and fetch and decode
their block's chunks, so a cluster maps over a dataset it did not write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import ray

from tensorlake.api.dataset import Dataset
from tensorlake.integrations.cluster_blocks import BlockPlan, plan_blocks, read_block

__all__ = ["to_ray"]


def to_ray(
    ds: Dataset,
    tensors: Sequence[str] | str | None = None,
    decode_method: dict[str, str] | None = None,
) -> Any:
    """The rows of ``ds`` as a ``ray.data.Dataset``: a column per tensor, and ``index``
    (each row's index in the dataset)."""
    plan = plan_blocks(ds, tensors, decode_method, "to_ray()")
    if not plan.blocks:
        return ray.data.from_items([])
    blocks = ray.data.range(len(plan.blocks), override_num_blocks=len(plan.blocks))
    return blocks.map_batches(
        _ReadBlocks(plan), batch_size=1, batch_format="numpy", zero_copy_batch=True
    )


class _ReadBlocks:
    """A ``map_batches`` function: block numbers in, their rows out."""

    def __init__(self, plan: BlockPlan) -> None:
        self.plan = plan

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        parts = [read_block(self.plan, int(b)) for b in batch["id"]]
        return {name: _column([p[name] for p in parts]) for name in parts[0]} if parts else {}


def _column(parts: list[Any]) -> np.ndarray:
    """One column of several blocks as one array: stacked, or one object per row."""
    if all(isinstance(p, np.ndarray) and p.dtype != object for p in parts):
        shapes = {p.shape[1:] for p in parts}
        if len(shapes) == 1:
            return np.concatenate(parts)
    values = [v for p in parts for v in p]
    column = np.empty(len(values), dtype=object)
    for k, value in enumerate(values):
        column[k] = value
    return column
