"""Reading one tensor's rows back from its chunks.

A row is located in the chunk table (``ChunkTable.locate``), then read from its chunk:
whole chunks when several of their rows are wanted (fetched concurrently, cached), or
one row with two ranged reads (its chunk's header, then its bytes) when one row of a
remote chunk is, so random access does not fetch megabytes per row. Raw fixed-shape and
ragged numeric tensors are sliced out of whole chunks, vectorised.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from tensorlake.engine.format.chunk import Chunk, ChunkHeader, decode_header, span_range, span_rows
from tensorlake.engine.format.chunk_table import KIND_ROWS, ChunkTable
from tensorlake.engine.format.keys import chunk_key
from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.htypes.base import Encoded
from tensorlake.engine.htypes.registry import get_htype
from tensorlake.engine.tensor.chunk_io import ChunkCache
from tensorlake.errors import FormatError, KeyNotFoundError
from tensorlake.storage import Storage

__all__ = ["WHOLE_CHUNK_BYTES", "TensorReader", "widen_empty"]

WHOLE_CHUNK_BYTES = 1 << 20
"""Chunks up to this size are read whole (and cached) even for one row: one request,
and the next rows of the chunk (labels, boxes read at random) come from the cache."""


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


class TensorReader:
    """Reads the rows of one tensor through its chunk table (and its open chunk, the rows
    a writer holds in memory: see ``TensorEngine``)."""

    def __init__(
        self, storage: Storage, meta: TensorMeta, table: ChunkTable, cache: ChunkCache
    ) -> None:
        self.storage = storage
        self.meta = meta
        self.table = table
        self._cache = cache
        self._open_rows: list[bytes | memoryview] = []
        self._open_shapes: list[tuple[int, ...]] = []
        self._last_row_read = -2

    @property
    def num_rows(self) -> int:
        return self.table.num_rows + len(self._open_rows)

    def _key(self, chunk_id: int) -> str:
        return chunk_key(self.meta.chunks_name, chunk_id)

    def _wait_stored(self, keys: Iterable[str]) -> None:
        """Before ``keys`` are read from storage: wait for this process's writes of them
        still in flight (a writer's engine overrides this; a reader writes nothing)."""

    def chunk_keys(self, table: ChunkTable) -> list[str]:
        """The storage keys of ``table``'s chunks."""
        return [self._key(int(i)) for i in table.column("ids")]

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
        if len(rows) == 1:
            cached = self._cached_row(int(rows[0]))
            if cached is not None:
                return [cached]
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
            sequential = len(rows) == 1 and int(rows[0]) == self._last_row_read + 1
            whole = [j for j, p in by_chunk.items() if sequential or self._read_whole(j, len(p))]
            chunks = self._fetch(whole)
            ranged: dict[int, list[int]] = {}
            for j, positions in by_chunk.items():
                if self._is_tile(j):
                    sample = self._read_tiled(j, chunks)
                    for pos in positions:
                        out[pos] = sample
                    continue
                chunk = chunks.get(j) or self._cache.get(self._key(self.table[j].id))
                if chunk is None:
                    ranged[j] = positions
                    continue
                start = self.table.row_start(j)
                for pos in positions:
                    local = int(rows[pos]) - start
                    out[pos] = (chunk.row(local), tuple(int(s) for s in chunk.header.shapes[local]))
            if ranged:
                self._read_ranged(rows, ranged, out)
        if len(rows):
            self._last_row_read = int(rows[-1])
        return out  # type: ignore[return-value]

    def _cached_row(self, row: int) -> Encoded | None:
        """Row ``row`` from a cached chunk, if one holds it (random access's fast path)."""
        table = self.table
        if not 0 <= row < table.num_rows:
            return None
        j = table.locate(row)
        ref = table[j]  # (one entry: a lazy table is not read whole)
        if ref.kind != KIND_ROWS:
            return None
        chunk = self._cache.get(self._key(ref.id))
        if chunk is None:
            return None
        local = row - table.row_start(j)
        self._last_row_read = row
        return chunk.row(local), tuple(int(s) for s in chunk.header.shapes[local])

    def _read_whole(self, j: int, wanted: int) -> bool:
        """Whether to fetch chunk entry ``j`` whole (and cache it) for ``wanted`` of its
        rows, rather than only their byte ranges: for a tile, a chunk in memory or in the
        cache, a small or compressed chunk, or when at least half of its rows are wanted."""
        if self._is_tile(j) or self.storage.memory_resident:
            return True
        ref = self.table[j]
        if ref.nbytes <= WHOLE_CHUNK_BYTES or self._cache.get(self._key(ref.id)) is not None:
            return True
        rows_in_chunk = ref.row_end - self.table.row_start(j)
        return 2 * wanted >= rows_in_chunk

    def _read_ranged(
        self, rows: np.ndarray, ranged: dict[int, list[int]], out: list[Encoded | None]
    ) -> None:
        """Fill ``out`` for rows read by byte range: chunk headers (cached) first, then one
        ranged read per run of consecutive rows, all concurrently."""
        keys = {j: self._key(self.table[j].id) for j in ranged}
        self._wait_stored(keys.values())
        headers = dict(
            zip(
                ranged,
                self._headers([(keys[j], self.table[j].header_nbytes) for j in ranged]),
            )
        )
        requests: list[tuple[str, int, int]] = []
        runs: list[tuple[int, list[tuple[int, int]]]] = []  # (entry, [(pos, local)])
        for j, positions in ranged.items():
            header = headers[j]
            if header.chunk_compression is not None:  # no ranges into a compressed chunk
                chunk = self._fetch([j])[j]
                start = self.table.row_start(j)
                for pos in positions:
                    local = int(rows[pos]) - start
                    out[pos] = (chunk.row(local), tuple(int(s) for s in header.shapes[local]))
                continue
            start = self.table.row_start(j)
            wanted = sorted((int(rows[pos]) - start, pos) for pos in positions)
            run: list[tuple[int, int]] = []
            for local, pos in wanted:
                if run and local > run[-1][1] + 1:
                    runs.append((j, run))
                    run = []
                run.append((pos, local))
            runs.append((j, run))
        for j, run in runs:
            requests.append((keys[j], *span_range(headers[j], run[0][1], run[-1][1])))
        for (j, run), data in zip(runs, self.storage.get_ranges(requests)):
            header = headers[j]
            first, last = run[0][1], run[-1][1]
            span = span_rows(data, header, first, last, keys[j])
            for pos, local in run:  # a row asked for twice is in the run twice
                out[pos] = (span[local - first], tuple(int(s) for s in header.shapes[local]))

    def _headers(self, wanted: list[tuple[str, int]]) -> list[ChunkHeader]:
        """Chunk headers (key, header size) from the cache, the missing ones read
        concurrently and cached."""
        cache = self._cache
        found = [cache.cached_header(key) for key, _ in wanted]
        missing = [i for i, h in enumerate(found) if h is None]
        if missing:
            requests = [(wanted[i][0], 0, wanted[i][1]) for i in missing]
            for i, data in zip(missing, self.storage.get_ranges(requests)):
                found[i] = cache.put_header(wanted[i][0], decode_header(data, wanted[i][0]))
        return found  # type: ignore[return-value]

    def _is_tile(self, j: int) -> bool:
        return self.table[j].kind != KIND_ROWS

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
        self._wait_stored(missing)
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
                if len(table) != chunk.header.n_rows:
                    return None  # empty rows (no bytes) among the chunk's rows
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
                # only the span holding the rows asked for: a chunk may hold a million
                offsets = header.offsets[lo : hi + 1].astype(np.int64)
                # one copy of that span; rows are views of it
                span = items[offsets[0] : offsets[-1]].copy().view(dtype)
                element = ((offsets - offsets[0]) // dtype.itemsize).tolist()
                shapes = widen_empty(self.meta, header.shapes[local].tolist())
                for k, (pos, r) in enumerate(zip(positions.tolist(), (local - lo).tolist())):
                    row = span[element[r] : element[r + 1]]
                    if row.size != math.prod(shapes[k]):
                        raise FormatError(
                            f"Chunk {chunk.key} is damaged: a row declares shape "
                            f"{tuple(shapes[k])} but holds {row.size} elements.",
                            key=chunk.key,
                        )
                    out[pos] = row.reshape(shapes[k])
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
            and get_htype(meta.htype).raw_rows
            and self._whole_chunks_pay(rows)
        )

    def _whole_chunks_pay(self, rows: np.ndarray) -> bool:
        """Whether fetching the chunks holding ``rows`` whole is the way to read them (the
        vectorised paths do): not when a few rows of a large chunk are wanted, which
        ranged reads fetch for a fraction of the bytes (a preview of 4 rows of a
        million-row chunk)."""
        entries, counts = np.unique(self.table.locate_many(rows), return_counts=True)
        return all(self._read_whole(j, c) for j, c in zip(entries.tolist(), counts.tolist()))

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
            self._wait_stored([self._key(ref.id)])
            header = self._cache.header(self.storage, self._key(ref.id), ref.header_nbytes)
            local = 0 if ref.kind != KIND_ROWS else row - self.table.row_start(j)
            shapes.append(tuple(int(s) for s in header.shapes[local]))
        return widen_empty(self.meta, shapes)


def widen_empty(meta: TensorMeta, shapes: list[Any]) -> list[Any]:
    """``shapes`` with those of empty rows written before the tensor's rank was known
    (``()``, or ``[]`` from a chunk header) as zeros of that rank (``Htype.encode_empty``);
    a tensor of 0-d rows (written before scalars were (1,)) keeps them."""
    rank = len(meta.max_shape) if meta.max_shape is not None else 1
    if not rank or all(len(s) for s in shapes):
        return shapes
    empty = (0,) * rank
    return [s if len(s) else type(s)(empty) for s in shapes]
