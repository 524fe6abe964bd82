"""Cutting an eval's input into blocks of consecutive items (``Task``s).

A block is the unit a worker runs and the writer adopts: big enough that per-block
costs (a submit, a chunk table) vanish, small enough to bound a worker's memory and
the progress bar's latency. No block straddles a checkpoint.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from tensorlake.compute.worker import Task
from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.errors import TransformError

__all__ = ["MAX_BLOCK", "MIN_TAIL_BLOCK", "cut_blocks"]

MAX_BLOCK = 1000  # items per block, at most: bounds worker memory and progress latency
MIN_TAIL_BLOCK = 16  # the smallest block the end of the input is cut into


def cut_blocks(
    data_in: Any,
    dataset_in: bool,
    start: int,
    n: int,
    num_workers: int,
    checkpoint_interval: int,
    core: DatasetCore,
) -> Iterator[Task]:
    """Blocks of consecutive items from ``start``; none straddles a checkpoint.

    With several workers the blocks shrink towards the end of the input, so that the
    workers finish together instead of one running a whole block alone. Items are
    taken from ``data_in`` as the blocks are cut (a dataset input is read by the
    workers, by row); each block carries the tensor metas as they are when it is cut.
    """
    size = max(1, min(MAX_BLOCK, -(-(n - start) // max(1, 4 * num_workers))))
    items = None if dataset_in else iter(data_in)
    if items is not None and start:
        items = itertools.islice(items, start, None)
    index = start
    while index < n:
        if num_workers > 1:
            size = min(size, max(MIN_TAIL_BLOCK, -(-(n - index) // (2 * num_workers))))
        stop = min(n, index + size)
        if checkpoint_interval:
            stop = min(stop, (index // checkpoint_interval + 1) * checkpoint_interval)
        count = stop - index
        block = None if items is None else list(itertools.islice(items, count))
        if block is not None and len(block) < count:
            raise TransformError(
                f"data_in yielded {index + len(block)} items but its len() is {n}."
            )
        metas = {name: e.meta.to_dict() for name, e in core.engines.items()}
        yield Task(index, block, count, metas)
        index = stop
