"""One tensor's rows on storage: appends into chunks, reads rows back, updates rows.

Rows accumulate in an *open* chunk in memory until it reaches the tensor's chunk size;
then it is sealed: encoded once, put under a fresh random id (in the background), and
entered in the chunk table. ``flush`` also writes the open chunk (under a new id each
time it changed) so nothing acknowledged is lost; the superseded copy is deleted after
the manifest that no longer names it is stored. Chunks are never modified in place.
"""

from __future__ import annotations

import gc
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from tensorlake.engine import sample_codec
from tensorlake.engine.chunk import Chunk, encode_chunk_parts, row_range, verify_row
from tensorlake.engine.io import ChunkCache, ChunkWriter
from tensorlake.engine.manifest import (
    KIND_LAST_TILE,
    KIND_ROWS,
    KIND_TILE,
    ChunkRef,
    ChunkTable,
    TensorMeta,
    chunk_name,
)
from tensorlake.errors import FormatError, KeyNotFoundError, SampleError
from tensorlake.storage import MemoryStorage, Storage

Encoded = tuple[bytes | memoryview, tuple[int, ...]]


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic GC while making many small objects that hold no cycles (one array
    per row): otherwise a full collection can cost more than the read itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def chunk_prefix(tensor: str) -> str:
    return f"tensors/{tensor}/chunks/"


class TensorEngine:
    """Reads and writes the rows of one tensor through its chunk table."""

    def __init__(
        self,
        storage: Storage,
        meta: TensorMeta,
        table: ChunkTable,
        writer: ChunkWriter,
        cache: ChunkCache,
    ) -> None:
        self.storage = storage
        self.meta = meta
        self.table = table
        self._writer = writer
        self._cache = cache
        self._open_rows: list[bytes | memoryview] = []
        self._open_shapes: list[tuple[int, ...]] = []
        self._open_nbytes = 0
        self._open_written: ChunkRef | None = None  # the open chunk as last flushed
        self._garbage: list[str] = []  # staged chunks superseded, deleted after the manifest
        self._last_row_read = -2
        self.links: Any = None  # the dataset's LinkResolver (link tensors)

    def new_pending(self) -> sample_codec.Pending:
        pending = sample_codec.Pending.of(self.meta)
        pending.links = self.links
        return pending

    # -- geometry -------------------------------------------------------------------
    @property
    def num_rows(self) -> int:
        return self.table.num_rows + len(self._open_rows)

    def _key(self, chunk_id: int) -> str:
        return chunk_prefix(self.meta.name) + chunk_name(chunk_id)

    # -- appends --------------------------------------------------------------------
    def prepare(self, values: Sequence[Any], pending: sample_codec.Pending) -> list[Encoded]:
        """Validate and encode ``values`` without changing anything."""
        start = self.num_rows
        if len(values) > 1 and pending.links is not None:
            pending.prefetched = pending.links.inspect_many(self.meta, values)
        return [sample_codec.encode(self.meta, v, pending, start + i) for i, v in enumerate(values)]

    def extend_encoded(self, samples: Sequence[Encoded], pending: sample_codec.Pending) -> None:
        """Append already validated samples (from ``prepare``)."""
        meta = self.meta
        pending.apply(meta)
        limit = meta.max_chunk_size
        for data, shape in samples:
            n = len(data)
            if n > limit:
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
            if shape != meta.max_shape or shape != meta.min_shape:
                meta.update_shape(shape)

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
        for shape in (meta.min_shape, meta.max_shape):
            if shape is not None:
                self.meta.update_shape(shape)

    def chunk_keys(self, table: ChunkTable) -> list[str]:
        """The storage keys of ``table``'s chunks."""
        return [self._key(int(i)) for i in table.column("ids")]

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
        shape_arr = np.array(shapes, dtype=np.uint32).reshape(len(rows), -1)
        parts, header_nbytes = encode_chunk_parts(
            rows, shape_arr, self.meta.chunk_compression, tile
        )
        self._writer.put(self._key(chunk_id), parts)
        return ChunkRef(chunk_id, row_end, sum(map(len, parts)), header_nbytes, kind, True)

    def _tile_refs(
        self, data: bytes | memoryview, shape: tuple[int, ...], row: int
    ) -> list[ChunkRef]:
        """Write a sample larger than the chunk size as consecutive tile chunks."""
        view, step = memoryview(data), self.meta.max_chunk_size
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

    # -- reads ----------------------------------------------------------------------
    def read_stored(self, rows: Sequence[int] | np.ndarray) -> list[Encoded]:
        """Stored bytes and shape of each row (checksum-verified), in the order asked."""
        with self._chunks_must_exist():
            return self._read_stored(rows)

    @contextmanager
    def _chunks_must_exist(self) -> Iterator[None]:
        try:
            yield
        except KeyNotFoundError as err:
            raise FormatError(
                f"Tensor '{self.meta.name}' refers to a chunk that is missing from storage "
                f"({err.key}). The dataset is damaged; reset() to the last commit may help.",
                key=err.key,
            ) from err

    def _read_stored(self, rows: Sequence[int] | np.ndarray) -> list[Encoded]:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out: list[Encoded | None] = [None] * len(rows)
        sealed = self.table.num_rows
        by_chunk: dict[int, list[int]] = {}
        for pos, (row, j) in enumerate(zip(rows.tolist(), self.table.locate_many(rows).tolist())):
            if row >= sealed:
                i = row - sealed
                out[pos] = (self._open_rows[i], self._open_shapes[i])
            else:
                by_chunk.setdefault(j, []).append(pos)
        if by_chunk:
            single = (
                len(rows) == 1
                and int(rows[0]) != self._last_row_read + 1
                and not isinstance(self.storage, MemoryStorage)
            )
            chunks = self._fetch([j for j in by_chunk if not single or self._is_tile(j)])
            for j, positions in by_chunk.items():
                if self._is_tile(j):
                    sample = self._read_tiled(j, chunks)
                    for pos in positions:
                        out[pos] = sample
                    continue
                start = self.table.row_start(j)
                chunk = chunks.get(j) or self._cache.get(self._key(self.table[j].id))
                for pos in positions:
                    local = int(rows[pos]) - start
                    if chunk is None:
                        out[pos] = self._read_one_ranged(j, local)
                    else:
                        out[pos] = (
                            chunk.row(local),
                            tuple(int(s) for s in chunk.header.shapes[local]),
                        )
        if len(rows):
            self._last_row_read = int(rows[-1])
        return out  # type: ignore[return-value]

    def _is_tile(self, j: int) -> bool:
        return int(self.table.column("kind")[j]) != KIND_ROWS

    def _fetch(self, entries: Sequence[int]) -> dict[int, Chunk]:
        """Whole chunks for table entries (tiles expanded), cached, fetched concurrently."""
        wanted: dict[str, int] = {}
        for j in entries:
            first, end = self.table.tile_span(j)
            for k in range(first, end):
                wanted[self._key(self.table[k].id)] = k
        found: dict[int, Chunk] = {}
        missing = []
        for key, k in wanted.items():
            chunk = self._cache.get(key)
            if chunk is None:
                missing.append(key)
            else:
                found[k] = chunk
        for key, data in self.storage.get_many(missing):
            chunk = Chunk(data, key)
            self._cache.put(chunk)
            found[wanted[key]] = chunk
        return found

    def _read_tiled(self, j: int, chunks: dict[int, Chunk]) -> Encoded:
        first, end = self.table.tile_span(j)
        parts = [chunks[k].row(0) for k in range(first, end)]
        shape = tuple(int(s) for s in chunks[end - 1].header.shapes[0])
        return b"".join(parts), shape

    def _read_one_ranged(self, j: int, local: int) -> Encoded:
        ref = self.table[j]
        key = self._key(ref.id)
        header = self._cache.header(self.storage, key, ref.header_nbytes)
        shape = tuple(int(s) for s in header.shapes[local])
        if header.chunk_compression is not None:
            chunk = self._fetch([j])[j]
            return chunk.row(local), shape
        start, end = row_range(header, local)
        return verify_row(self.storage.get_range(key, start, end), header, local, key), shape

    def read_fixed(self, rows: np.ndarray, dtype: np.dtype) -> np.ndarray | None:
        """Rows of a raw (uncompressed, non-bool) fixed-shape tensor as one array, vectorised
        per chunk; None when the rows are not all in such chunks (callers fall back)."""
        shape = self.meta.min_shape
        if shape is None or shape != self.meta.max_shape or not self._raw_rows(rows, dtype):
            return None
        out = np.empty((len(rows), *shape), dtype=dtype)
        with self._chunks_must_exist():
            for chunk, positions, local in self._rows_by_chunk(rows):
                table = np.frombuffer(chunk.verified_payload(), dtype=dtype).reshape(-1, *shape)
                out[positions] = table[local]
        return out

    def read_ragged(self, rows: np.ndarray, dtype: np.dtype) -> list[np.ndarray] | None:
        """Rows of a raw (uncompressed, non-bool) tensor of any shapes as a list of
        arrays, sliced from one copy per chunk instead of decoded row by row; None when
        the rows are not all in such chunks (callers fall back)."""
        if not self._raw_rows(rows, dtype):
            return None
        out: list[np.ndarray | None] = [None] * len(rows)
        with self._chunks_must_exist(), _no_gc():
            for chunk, positions, local in self._rows_by_chunk(rows):
                header = chunk.header
                items = np.frombuffer(chunk.verified_payload(), dtype=np.uint8)
                lo, hi = int(local.min()), int(local.max()) + 1
                offsets = header.offsets.astype(np.int64)
                # one copy of the span holding the rows asked for; rows are views of it
                span = items[offsets[lo] : offsets[hi]].copy().view(dtype)
                element = (offsets - offsets[lo]) // dtype.itemsize
                shapes = header.shapes.tolist()
                for pos, r in zip(positions.tolist(), local.tolist()):
                    out[pos] = span[element[r] : element[r + 1]].reshape(shapes[r])
        return out  # type: ignore[return-value]

    def _raw_rows(self, rows: np.ndarray, dtype: np.dtype) -> bool:
        """Whether ``rows`` are all raw numeric rows in sealed, untiled chunks."""
        meta = self.meta
        return (
            meta.sample_compression is None
            and meta.chunk_compression is None
            and dtype.kind in "iuf"
            and len(rows) > 0
            and int(rows.max()) < self.table.num_rows
            and not self.table.column("kind").any()
        )

    def _rows_by_chunk(self, rows: np.ndarray) -> Iterator[tuple[Chunk, np.ndarray, np.ndarray]]:
        """For each chunk holding some of ``rows``: the chunk, the positions in ``rows`` it
        answers, and those rows' indices inside it. Chunks are fetched concurrently."""
        js = self.table.locate_many(rows)
        order = np.argsort(js, kind="stable")
        entries, firsts = np.unique(js[order], return_index=True)
        chunks = self._fetch(entries.tolist())
        starts = np.concatenate([[0], self.table.row_ends])
        bounds = [*firsts.tolist(), len(rows)]
        for k, j in enumerate(entries.tolist()):
            positions = order[bounds[k] : bounds[k + 1]]
            yield chunks[j], positions, rows[positions] - starts[j]

    def read_shapes(self, rows: Sequence[int] | np.ndarray) -> list[tuple[int, ...]]:
        """Each row's shape, from chunk headers only (no sample data is fetched)."""
        with self._chunks_must_exist():
            return self._read_shapes(rows)

    def _read_shapes(self, rows: Sequence[int] | np.ndarray) -> list[tuple[int, ...]]:
        shapes = []
        sealed = self.table.num_rows
        for row in np.asarray(rows, dtype=np.int64).reshape(-1).tolist():
            if row >= sealed:
                shapes.append(self._open_shapes[row - sealed])
                continue
            j = self.table.locate(row)
            ref = self.table[j]
            header = self._cache.header(self.storage, self._key(ref.id), ref.header_nbytes)
            local = 0 if ref.kind != KIND_ROWS else row - self.table.row_start(j)
            shapes.append(tuple(int(s) for s in header.shapes[local]))
        return shapes

    # -- updates --------------------------------------------------------------------
    def update_encoded(self, row: int, sample: Encoded, pending: sample_codec.Pending) -> None:
        """Replace one row; its chunk is rewritten under a new id."""
        pending.apply(self.meta)
        data, shape = sample
        sealed = self.table.num_rows
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
            rows = chunk.rows()
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
        batch: list[int] = []
        batch_bytes = 0

        def emit(idx: list[int]) -> None:
            if idx:
                end = start_row + idx[-1] + 1
                refs.append(self._write([rows[i] for i in idx], [shapes[i] for i in idx], end))

        for i, data in enumerate(rows):
            if len(data) > limit:
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

    def staged_chunk_keys(self) -> list[str]:
        """Chunks written since the base commit (no commit refers to them)."""
        staged = self.table.column("staged").astype(bool)
        keys = [self._key(int(i)) for i in self.table.column("ids")[staged]]
        if self._open_written is not None:
            keys.append(self._key(self._open_written.id))
        return keys


def append_columns(
    engines: Mapping[str, TensorEngine],
    columns: Mapping[str, Sequence[Any]],
    skip_ok: bool = False,
    scope: Sequence[str] | None = None,
) -> None:
    """Validate rows for every tensor first, then append them all (all or nothing)."""
    if len(set(map(len, columns.values()))) > 1:
        lengths = {name: len(v) for name, v in columns.items()}
        raise SampleError(f"every tensor needs the same number of samples, got {lengths}.")
    names = engines if scope is None else scope
    if not skip_ok and (scope is not None or len(columns) < len(engines)):
        missing = [n for n in names if n not in columns and not engines[n].meta.hidden]
        if missing:
            raise SampleError(
                f"no values given for tensors {missing}. Pass skip_ok=True to leave them "
                "shorter, or include them."
            )
    prepared = []
    for name, values in columns.items():
        engine = engines[name]
        pending = engine.new_pending()
        prepared.append((engine, engine.prepare(values, pending), pending))
        extra = engine.meta.extra
        if pending.linked and (extra.get("shape_tensor") or extra.get("info_tensor")):
            for hidden, value_of in (
                (extra.get("shape_tensor"), lambda o: np.asarray(o.shape, dtype=np.uint32)),
                (extra.get("info_tensor"), lambda o: o.to_json()),
            ):
                if hidden:
                    companion = engines[hidden]
                    p = companion.new_pending()
                    values_h = [value_of(o) for o in pending.linked]
                    prepared.append((companion, companion.prepare(values_h, p), p))
    for engine, encoded, pending in prepared:
        engine.extend_encoded(encoded, pending)
