"""Writing one tensor's rows: appends into chunks, row updates, flushes.

Rows accumulate in an *open* chunk in memory until it reaches the tensor's chunk size;
then it is sealed: encoded once, put under a fresh random id (in the background), and
entered in the chunk table. ``flush`` also writes the open chunk (under a new id each
time it changed) so nothing acknowledged is lost; the superseded copy is deleted after
the manifest that no longer names it is stored. Chunks are never modified in place.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from tensorlake.engine.format.chunk import encode_chunk_parts
from tensorlake.engine.format.chunk_table import (
    KIND_LAST_TILE,
    KIND_ROWS,
    KIND_TILE,
    ChunkRef,
    ChunkTable,
)
from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.htypes import codec
from tensorlake.engine.htypes.base import Encoded, Pending
from tensorlake.engine.htypes.image_rows import chunk_codec
from tensorlake.engine.htypes.registry import get_htype
from tensorlake.engine.links.resolver import LinkResolver
from tensorlake.engine.tensor.chunk_io import ChunkCache, ChunkWriter
from tensorlake.engine.tensor.reader import TensorReader
from tensorlake.errors import SampleError
from tensorlake.storage import Storage

__all__ = ["TensorEngine"]

_TRACKED_WRITES = 64  # more than any writer keeps in flight


class TensorEngine(TensorReader):
    """Reads and writes the rows of one tensor through its chunk table."""

    def __init__(
        self,
        storage: Storage,
        meta: TensorMeta,
        table: ChunkTable,
        writer: ChunkWriter,
        cache: ChunkCache,
        links: LinkResolver | None = None,
    ) -> None:
        super().__init__(storage, meta, table, cache)
        self._writer = writer
        self.links = links  # the dataset's resolver, for link tensors
        self._open_nbytes = 0
        self._open_written: ChunkRef | None = None  # the open chunk as last flushed
        self._garbage: list[str] = []  # staged chunks superseded, deleted after the manifest
        # chunks this engine put last, each with a wait for its put (older ones are stored:
        # the writer keeps fewer than this in flight)
        self._unstored: dict[str, Callable[[], None]] = {}

    def new_pending(self) -> Pending:
        return Pending.of(self.meta, get_htype(self.meta.htype), self.links)

    # -- appends --------------------------------------------------------------------
    def prepare(self, values: Sequence[Any], pending: Pending) -> list[Encoded]:
        """Validate and encode ``values`` without changing anything."""
        start = self.num_rows
        pending.htype.prepare_batch(self.meta, values, pending)
        encoded: list[Encoded] = []
        arrays: dict[int, Encoded] = {}  # an array given for several rows (a shared label
        for i, v in enumerate(values):  # row) is encoded once: nothing runs in between
            if type(v) is np.ndarray:
                done = arrays.get(id(v))
                if done is None:
                    done = arrays[id(v)] = codec.encode(self.meta, v, pending, start + i)
                encoded.append(done)
            else:
                encoded.append(codec.encode(self.meta, v, pending, start + i))
        return encoded

    def extend_encoded(self, samples: Sequence[Encoded], pending: Pending) -> None:
        """Append already validated samples (from ``prepare``)."""
        meta = self.meta
        pending.apply(meta)
        limit = meta.max_chunk_size
        tile = self._tile_size()
        for data, shape in samples:
            n = len(data)
            if tile is not None and n > tile:
                self.seal()
                for ref in self._tile_refs(data, shape, self.table.num_rows):
                    self.table.append(ref)
            else:
                if self._open_rows and self._open_nbytes + n > limit:
                    self.seal()
                self._open_rows.append(data)
                self._open_shapes.append(shape)
                self._open_nbytes += n
                if self._open_written is not None:
                    self._open_written_stale()
            meta.length += 1
            if (shape != meta.max_shape or shape != meta.min_shape) and (shape or n):
                meta.update_shape(shape)  # (an empty row of no rank yet fixes none)

    def _tile_size(self) -> int | None:
        """Samples larger than this are split into tiles of this size (None: never):
        ``create_tensor(tiling_threshold=...)``, by default the chunk size."""
        threshold = self.meta.extra.get("tiling_threshold")
        if threshold is None:
            return self.meta.max_chunk_size
        return None if threshold == -1 else int(threshold)

    def _open_written_stale(self) -> None:
        if self._open_written is not None:
            self._garbage.append(self._key(self._open_written.id))
            self._open_written = None

    def adopt(self, table: ChunkTable, meta: TensorMeta) -> None:
        """Append rows another writer stored as chunks (a compute worker's block);
        ``meta`` is that writer's meta of those rows only."""
        if meta.dtype is not None and self.meta.dtype not in (None, meta.dtype):
            raise SampleError(
                f"rows of dtype {meta.dtype} cannot join a tensor of dtype {self.meta.dtype}. "
                "Pass dtype= to create_tensor so that every worker converts to it.",
                tensor=self.meta.name,
            )
        self.seal()
        self.table.extend_shifted(table, self.table.num_rows)
        self.meta.length += meta.length
        if self.meta.dtype is None:
            self.meta.dtype = meta.dtype
            if self.meta.htype == "generic" and meta.htype != "generic":
                self.meta.htype = meta.htype  # the block's strings made it text (generic.py)
        for shape in (meta.min_shape, meta.max_shape):
            if shape is not None:
                self.meta.update_shape(shape)

    def discard_chunks(self, table: ChunkTable) -> None:
        """Delete ``table``'s chunks once the next manifest is stored (rows rewritten)."""
        self._garbage.extend(self.chunk_keys(table))

    def seal(self) -> None:
        """Close the open chunk and enter it in the table (its put may still be running)."""
        if not self._open_rows:
            return
        row_end = self.table.num_rows + len(self._open_rows)
        if self._open_written is not None:  # unchanged since flushed: reuse that object
            self.table.append(self._open_written)
            self._open_written = None
        else:
            self.table.append(self._write(self._open_rows, self._open_shapes, row_end))
        self._open_rows, self._open_shapes, self._open_nbytes = [], [], 0

    def _write(
        self,
        rows: Sequence[bytes | memoryview],
        shapes: Sequence[tuple[int, ...]],
        row_end: int,
        kind: int = KIND_ROWS,
        tile: tuple[int, int] | None = None,
    ) -> ChunkRef:
        chunk_id = secrets.randbits(64)
        shape_arr = _shape_array(shapes)
        # an image chunk_compression is applied per row by the htype: no byte codec here
        parts, header_nbytes = encode_chunk_parts(rows, shape_arr, chunk_codec(self.meta), tile)
        key = self._key(chunk_id)
        self._writer.put(key, parts)
        # the writer keeps a few puts in flight: a read of this chunk (an update of one of
        # its rows inside ``with ds:``) must wait for its own
        self._unstored[key] = self._writer.barrier()
        while len(self._unstored) > _TRACKED_WRITES:
            self._unstored.pop(next(iter(self._unstored)))
        return ChunkRef(chunk_id, row_end, sum(map(len, parts)), header_nbytes, kind, True)

    def _wait_stored(self, keys: Iterable[str]) -> None:
        for key in keys:
            stored = self._unstored.pop(key, None)
            if stored is not None:
                stored()

    def _tile_refs(
        self, data: bytes | memoryview, shape: tuple[int, ...], row: int
    ) -> list[ChunkRef]:
        """Write a sample larger than the chunk size as consecutive tile chunks."""
        view, step = memoryview(data), self._tile_size() or self.meta.max_chunk_size
        count = -(-len(view) // step)
        refs = []
        for t in range(count):
            last = t == count - 1
            piece = [view[t * step : (t + 1) * step]]
            kind = KIND_LAST_TILE if last else KIND_TILE
            refs.append(self._write(piece, [shape], row + int(last), kind, (t, count)))
        return refs

    # -- flush ----------------------------------------------------------------------
    def flush_chunks(self) -> None:
        """Write the open chunk if it changed since the last flush."""
        if self._open_rows and self._open_written is None:
            self._open_written = self._write(self._open_rows, self._open_shapes, self.num_rows)

    def manifest_table(self) -> ChunkTable:
        """The chunk table as a manifest must record it (sealed chunks + the open one)."""
        table = self.table.copy()
        if self._open_rows:
            assert self._open_written is not None, "flush_chunks() first"
            table.append(self._open_written)
        return table

    def take_garbage(self) -> list[str]:
        garbage, self._garbage = self._garbage, []
        return garbage

    def seal_for_commit(self) -> None:
        """Make every row part of a sealed chunk, all marked committed."""
        self.seal()
        self.table.mark_committed()

    # -- updates --------------------------------------------------------------------
    def update_encoded(self, row: int, sample: Encoded, pending: Pending) -> None:
        """Replace one row; its chunk is rewritten under a new id."""
        pending.apply(self.meta)
        data, shape = sample
        sealed = self.table.num_rows
        if shape or len(data):  # (an empty row of no rank yet fixes no shape)
            self.meta.update_shape(shape)
        if row >= sealed:
            i = row - sealed
            self._open_nbytes += len(data) - len(self._open_rows[i])
            self._open_rows[i], self._open_shapes[i] = data, shape
            self._open_written_stale()
            return
        j = self.table.locate(row)
        first, end = self.table.tile_span(j)
        start_row = self.table.row_start(first)
        if self._is_tile(j):
            rows, shapes = [data], [shape]
        else:
            chunk = self._fetch([j])[j]
            rows = list[bytes | memoryview](chunk.rows())
            shapes = [tuple(int(s) for s in sh) for sh in chunk.header.shapes]
            rows[row - start_row], shapes[row - start_row] = memoryview(data), shape
        new_refs = self._pack(rows, shapes, start_row)
        for k in range(first, end):
            ref = self.table[k]
            if ref.staged:
                self._garbage.append(self._key(ref.id))
        self.table.replace(first, end, new_refs)

    def _pack(
        self, rows: list[bytes | memoryview], shapes: list[tuple[int, ...]], start_row: int
    ) -> list[ChunkRef]:
        """Encode rows into chunk(s) of the right size, tiling oversized samples."""
        refs: list[ChunkRef] = []
        limit = self.meta.max_chunk_size
        tile = self._tile_size()
        batch: list[int] = []
        batch_bytes = 0

        def emit(idx: list[int]) -> None:
            if idx:
                end = start_row + idx[-1] + 1
                refs.append(self._write([rows[i] for i in idx], [shapes[i] for i in idx], end))

        for i, data in enumerate(rows):
            if tile is not None and len(data) > tile:
                emit(batch)
                batch, batch_bytes = [], 0
                refs.extend(self._tile_refs(data, shapes[i], start_row + i))
                continue
            if batch and batch_bytes + len(data) > limit:
                emit(batch)
                batch, batch_bytes = [], 0
            batch.append(i)
            batch_bytes += len(data)
        emit(batch)
        return refs

    # -- removals -------------------------------------------------------------------
    def delete_rows(self, rows: Sequence[int]) -> None:
        """Remove ``rows`` (distinct, in range); later rows move up. Each chunk holding
        one is rewritten without it under a new id (a tiled sample's tiles are dropped),
        and the entries after it are renumbered."""
        gone = sorted({int(r) for r in rows}, reverse=True)
        sealed = self.table.num_rows
        for row in gone:
            if row >= sealed:
                i = row - sealed
                self._open_nbytes -= len(self._open_rows[i])
                del self._open_rows[i], self._open_shapes[i]
                self._open_written_stale()
        by_span: dict[tuple[int, int], list[int]] = {}
        for row in (r for r in gone if r < sealed):
            by_span.setdefault(self.table.tile_span(self.table.locate(row)), []).append(row)
        for (first, end), span_rows in sorted(by_span.items(), reverse=True):
            start_row = self.table.row_start(first)
            if self._is_tile(end - 1):
                new_refs: list[ChunkRef] = []
            else:
                chunk = self._fetch([first])[first]
                drop = {r - start_row for r in span_rows}
                kept = [i for i in range(chunk.header.n_rows) if i not in drop]
                all_rows = chunk.rows()
                shapes = chunk.header.shapes
                new_refs = self._pack(
                    [all_rows[i] for i in kept],
                    [tuple(int(x) for x in shapes[i]) for i in kept],
                    start_row,
                )
            for k in range(first, end):
                ref = self.table[k]
                if ref.staged:
                    self._garbage.append(self._key(ref.id))
            self.table.replace(first, end, new_refs)
            self.table.shift_rows(first + len(new_refs), -len(span_rows))
        self.meta.length -= len(gone)
        if self.meta.length == 0:
            self.meta.min_shape = self.meta.max_shape = None

    def clear(self) -> None:
        """Remove every row: an empty table; chunks no commit names are deleted once the
        next manifest is stored."""
        self._garbage.extend(self.staged_chunk_keys())
        self._open_rows, self._open_shapes, self._open_nbytes = [], [], 0
        self._open_written = None
        self.table = ChunkTable()
        self.meta.length = 0
        self.meta.min_shape = self.meta.max_shape = None

    def staged_chunk_keys(self) -> list[str]:
        """Chunks written since the base commit (no commit refers to them)."""
        staged = self.table.column("staged").astype(bool)
        keys = [self._key(int(i)) for i in self.table.column("ids")[staged]]
        if self._open_written is not None:
            keys.append(self._key(self._open_written.id))
        return keys


def _shape_array(shapes: Sequence[tuple[int, ...]]) -> np.ndarray:
    """Rows' shapes as the (rows, ndim) array a chunk header holds. Empty rows appended
    before any row fixed the tensor's rank have shape ``()``: they get zeros of the
    chunk's rank (they hold no elements, whatever their rank)."""
    try:
        return np.array(shapes, dtype=np.uint32).reshape(len(shapes), -1)
    except ValueError:  # shapes of different ranks: () among them
        ndim = max(map(len, shapes))
        return np.array(
            [s if len(s) == ndim else (0,) * ndim for s in shapes], dtype=np.uint32
        ).reshape(len(shapes), ndim)
