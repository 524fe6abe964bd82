"""Cutting a dataset view into chunk-aligned blocks of rows for a cluster to read.

``ds.to_ray()`` and ``ds.to_dask()`` hand a cluster one task per block; a block is a run
of the view's rows that lie in one stored chunk of the tensor that decides the cut (the
one with the most bytes: reading a block then fetches each of its chunks once, and no
two tasks fetch the same chunk). Each task opens the dataset itself, read-only, at the
version the view was made on (``Source``), once per worker process and version.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tensorlake.api.dataset import Dataset, core_of, rows_of
from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.errors import DatasetError
from tensorlake.integrations.loader.reader import BatchReader, check_decode_methods
from tensorlake.integrations.loader.source import Source
from tensorlake.integrations.loader.view import tensor_names

__all__ = ["BlockPlan", "plan_blocks", "read_block"]


@dataclass
class BlockPlan:
    """The blocks of one view: what every task needs to read its own."""

    source: Source
    names: dict[str, str]  # full tensor name -> its column name (relative to the group)
    methods: dict[str, str]  # full tensor name -> decode method
    blocks: list[np.ndarray]  # absolute rows of each block, in view order
    token: str = field(default_factory=lambda: secrets.token_hex(8))


def plan_blocks(
    ds: Dataset,
    tensors: Sequence[str] | str | None,
    decode_method: dict[str, str] | None,
    what: str,
    by: str | None = None,
) -> BlockPlan:
    """The chunk-aligned blocks of the view ``ds`` (cut along tensor ``by``'s chunks, or
    the one of the most bytes). ``what`` names the caller in errors (``"to_ray()"``)."""
    core = core_of(ds)
    if core.storage.memory_resident:
        raise DatasetError(
            f"{what} reads the dataset in the cluster's worker processes, which cannot "
            "see a dataset in memory (mem://): store it on local disk or S3 first, e.g. "
            "tl.deepcopy(ds, path)."
        )
    names = tensor_names(ds, tensors)
    rows = rows_of(ds)
    if rows is None:
        raise DatasetError(f"{what} reads a view of rows; ds[i] is one row: use ds[i:i+1].")
    if by is None:
        by = max(names, key=lambda n: int(core.engine(n).table.column("nbytes").sum()))
    return BlockPlan(
        source=Source.of(ds, workers=True),
        names=names,
        methods=check_decode_methods(core, list(names), decode_method),
        blocks=_cut(core, by, np.asarray(rows, dtype=np.int64)),
    )


def _cut(core: DatasetCore, name: str, rows: np.ndarray) -> list[np.ndarray]:
    """``rows`` split wherever the chunk of tensor ``name`` holding them changes."""
    if not len(rows):
        return []
    table = core.engine(name).table
    chunk = np.full(len(rows), -1, dtype=np.int64)
    inside = rows < table.num_rows
    if inside.any():
        chunk[inside] = table.locate_many(rows[inside])
    edges = np.flatnonzero(np.diff(chunk)) + 1
    return np.split(rows, edges)


_open: OrderedDict[str, tuple[DatasetCore, BatchReader]] = OrderedDict()
_open_lock = threading.Lock()
_KEEP = 4  # dataset versions a worker keeps open


def read_block(plan: BlockPlan, block: int) -> dict[str, Any]:
    """Block ``block``'s rows, ``{column: values}`` (an array when the rows stack, else a
    list), plus ``index``: each row's index in the dataset."""
    with _open_lock:
        opened = _open.get(plan.token)
        if opened is None:
            core = plan.source.open()
            opened = (core, BatchReader(core, plan.methods))
            _open[plan.token] = opened
            while len(_open) > _KEEP:
                _open.popitem(last=False)[1][1].close()
        _open.move_to_end(plan.token)
    rows = plan.blocks[block]
    values = opened[1].read(rows)
    out = {plan.names[name]: column for name, column in values.items()}
    out["index"] = rows.copy()
    return out
