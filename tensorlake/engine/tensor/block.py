"""Blocks: rows written as chunks by a worker, then adopted by the dataset's writer.

A compute worker appends the rows of a block of input items into fresh chunk tables of
its own, writing sealed chunks straight to the target storage; it sends back only a
``BlockDescriptor`` (each tensor's chunk table and meta), never sample data. The writer
process adopts blocks in input order, which appends their chunk entries to its tables:
no row is copied. Class names are the one piece of state workers cannot agree on in
advance; ``remap_class_labels`` reconciles them at adoption.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tensorlake.engine.format.chunk_table import ChunkTable
from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.htypes import codec
from tensorlake.engine.links.resolver import LinkResolver
from tensorlake.engine.tensor.append import append_columns
from tensorlake.engine.tensor.chunk_io import ChunkCache, ChunkWriter
from tensorlake.engine.tensor.engine import TensorEngine
from tensorlake.engine.tensor.reader import TensorReader
from tensorlake.storage import Storage

__all__ = ["BlockDescriptor", "BlockWriter", "TensorBlock", "remap_class_labels"]


@dataclass(slots=True)
class TensorBlock:
    """One tensor's part of a block: its chunk table and the meta of its rows."""

    table: dict[str, bytes]
    meta: dict[str, Any]
    base_class_names: int  # how many class names the worker started from


@dataclass(slots=True)
class BlockDescriptor:
    """What a worker returns for a block: small, whatever the size of the rows."""

    tensors: dict[str, TensorBlock]
    chunks: dict[str, bytes] = field(default_factory=dict)  # only for memory targets
    rows: int = 0

    def met_class_names(self) -> bool:
        """Whether the worker added class names (adoption may read its label rows)."""
        return any(
            len(part.meta["info"].get("class_names") or []) > part.base_class_names
            for part in self.tensors.values()
        )


class BlockWriter:
    """Appends rows into new chunks on ``storage``, starting from the given tensor metas."""

    def __init__(
        self,
        storage: Storage,
        metas: Mapping[str, TensorMeta],
        ship: bool = False,
        links: LinkResolver | None = None,
        background_writes: bool = True,
        writer: ChunkWriter | None = None,
    ) -> None:
        self.storage = storage
        self.ship = ship  # return the chunk bytes too (a private memory store)
        # a writer of the caller's goes on storing after finish(): see ChunkWriter.end_batch
        self._own_writer = writer is None
        self.writer = writer or ChunkWriter(storage, inline=None if background_writes else True)
        self.engines: dict[str, TensorEngine] = {}
        self.base_class_names: dict[str, int] = {}
        for name, meta in metas.items():
            mine = copy.deepcopy(meta)
            mine.length, mine.min_shape, mine.max_shape = 0, None, None
            self.base_class_names[name] = len(mine.info.get("class_names") or [])
            self.engines[name] = TensorEngine(
                storage, mine, ChunkTable(), self.writer, ChunkCache(0), links
            )

    def append(self, columns: Mapping[str, Sequence[Any]], skip_ok: bool = False) -> None:
        append_columns(self.engines, columns, skip_ok)

    def finish(self) -> BlockDescriptor:
        """Store every row and describe the chunks (their puts are complete on return,
        unless the writer is the caller's)."""
        for engine in self.engines.values():
            engine.seal()
        if self._own_writer:
            self.writer.close()
        chunks: dict[str, bytes] = {}
        if self.ship:
            chunks = {k: self.storage.get(k) for k in self.storage.list("")}
        tensors = {
            name: TensorBlock(e.table.to_dict(), e.meta.to_dict(), self.base_class_names[name])
            for name, e in self.engines.items()
            if e.meta.length
        }
        rows = max((e.meta.length for e in self.engines.values()), default=0)
        return BlockDescriptor(tensors, chunks, rows)

    def abandon(self) -> None:
        """Stop; chunks already stored stay orphaned until gc (reset runs it)."""
        try:
            if self._own_writer:
                self.writer.close()
            else:
                self.writer.wait()
        except Exception:
            pass


def remap_class_labels(
    engine: TensorEngine, meta: TensorMeta, table: ChunkTable, base: int
) -> bool:
    """Adopt a block of class labels whose new names got other ids than the writer's.

    Workers number the class names they meet after the first ``base`` in their own
    order; serially, each would get the next free id in input order. When the two
    agree (always, unless blocks in flight met different new names) the block's chunks
    are adopted as they are and this returns False. Otherwise the block's label rows
    are rewritten with the serial ids (they are small) and this returns True.
    """
    worker_names = meta.info.get("class_names")
    if worker_names is None or len(worker_names) <= base:
        return False
    names = engine.meta.info.setdefault("class_names", [])
    ids = {n: i for i, n in enumerate(names)}
    lut = np.arange(len(worker_names), dtype=np.uint32)
    for local, name in enumerate(worker_names[base:], start=base):
        if name not in ids:
            ids[name] = len(names)
            names.append(name)
        lut[local] = ids[name]
    if np.array_equal(lut, np.arange(len(worker_names))):
        return False
    rows = TensorReader(engine.storage, meta, table, ChunkCache(0)).read_stored(
        np.arange(meta.length)
    )
    pending = engine.new_pending()
    values = [_relabel(lut, codec.decode(meta, data, shape)) for data, shape in rows]
    engine.extend_encoded(engine.prepare(values, pending), pending)
    engine.discard_chunks(table)
    return True


def _relabel(lut: np.ndarray, value: Any) -> Any:
    """A label row with new ids: an array, or a sequence row's list of item arrays."""
    if isinstance(value, list):
        return [lut[item] for item in value]
    return lut[value]
