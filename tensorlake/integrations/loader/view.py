"""What a loader reads, checked once where it is made: the view's rows, the tensors and
their decode methods, and the epochs (order, shards, state) over those rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tensorlake.api.dataset import Dataset, core_of, rows_of
from tensorlake.errors import DatasetArgumentError, DatasetError, TensorNotFoundError
from tensorlake.integrations.loader.position import Position
from tensorlake.integrations.loader.reader import check_decode_methods
from tensorlake.integrations.loader.source import Source

__all__ = ["LoaderView", "loader_view", "tensor_names"]

MB = 1 << 20


@dataclass
class LoaderView:
    """The rows, tensors and epochs of one loader."""

    rows: np.ndarray  # absolute rows of the view, in view order
    names: dict[str, str]  # full tensor name -> its key in a sample
    methods: dict[str, str]  # full tensor name -> decode method
    position: Position
    source: Source
    pad: bool


def loader_view(
    ds: Dataset,
    tensors: Sequence[str] | None,
    batch_size: int,
    shuffle: bool,
    seed: int | None,
    drop_last: bool,
    buffer_size: int,
    rank: int,
    world_size: int,
    pad_tensors: bool,
    decode_method: dict[str, str] | None,
    workers: bool,
) -> LoaderView:
    """Check a loader's arguments against ``ds`` and plan its epochs."""
    _check_int("batch_size", batch_size, 1)
    _check_int("buffer_size", buffer_size, 0)
    _check_int("world_size", world_size, 1)
    _check_int("rank", rank, 0)
    if rank >= world_size:
        raise DatasetArgumentError(f"rank must be < world_size ({world_size}), got {rank}.")
    if seed is None:
        seed = 0
    _check_int("seed", seed, 0)
    core = core_of(ds)
    names = tensor_names(ds, tensors)
    lengths = [core.engine(n).num_rows for n in names]
    if pad_tensors and not ds.is_view:
        rows = np.arange(max(lengths, default=0), dtype=np.int64)
    else:
        selected = rows_of(ds)
        if selected is None:
            raise DatasetError("A loader reads a view of rows; ds[i] is one row: use ds[i:i+1].")
        rows = selected
    leading = max(names, key=lambda n: int(core.engine(n).table.column("nbytes").sum()))
    units = _chunk_of(core, leading, rows)
    window = _window_rows(core, list(names), len(rows), buffer_size)
    position = Position(units, batch_size, drop_last, bool(shuffle), seed, window, rank, world_size)
    return LoaderView(
        rows=rows,
        names=names,
        methods=check_decode_methods(core, list(names), decode_method),
        position=position,
        source=Source.of(ds, workers),
        pad=pad_tensors,
    )


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DatasetArgumentError(f"{name} must be an int >= {minimum}, got {value!r}.")


def tensor_names(ds: Dataset, tensors: Sequence[str] | str | None) -> dict[str, str]:
    """Full tensor names -> sample keys (relative to the group); all when ``None``."""
    available = ds.tensors
    if tensors is None:
        chosen = list(available)
    else:
        if isinstance(tensors, str):
            tensors = [tensors]
        chosen = list(tensors)
        missing = [t for t in chosen if t not in available]
        if missing:
            raise TensorNotFoundError(
                f"No tensor {missing} in this dataset; tensors: {sorted(available)}."
            )
    if not chosen:
        raise DatasetError("The dataset has no tensors to load.")
    return {available[t].key: t for t in chosen}


def _chunk_of(core: Any, name: str, rows: np.ndarray) -> np.ndarray:
    """The chunk table entry of each row of ``name`` (rows past its end: one unit)."""
    engine = core.engine(name)
    table = engine.table
    units = np.full(len(rows), len(table), dtype=np.int64)
    inside = rows < table.num_rows
    if inside.any():
        units[inside] = table.locate_many(rows[inside])
    return units


def _window_rows(core: Any, names: list[str], n: int, buffer_mb: int) -> int:
    """The shuffle window in rows: ``buffer_mb`` of the rows' average stored size."""
    stored = 0
    for name in names:
        table = core.engine(name).table
        if table.num_rows:
            stored += int(table.column("nbytes").sum()) // table.num_rows
    return max(1, (buffer_mb * MB) // max(1, stored)) if buffer_mb else 1
