"""Chunk I/O shared by a dataset's tensor engines: background writes and a read cache."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from tensorlake import config
from tensorlake.engine.format.chunk import Chunk, ChunkHeader, decode_header
from tensorlake.errors import StorageError
from tensorlake.storage import Storage

__all__ = ["ChunkCache", "ChunkWriter"]


class ChunkWriter:
    """Puts chunk objects (and syncs adopted ones) from background threads so encoding
    and I/O overlap.

    At most ``max_in_flight`` puts are queued (memory stays bounded however long an
    append runs); ``wait()`` blocks until all are stored and re-raises the first failure.
    Memory storage is written inline: there is no I/O to overlap.

    ``keep_failed``: a put that failed (a full disk) is kept and tried again by the next
    ``wait()``, so a flush retried once there is room stores every chunk its manifest
    names (else the chunk would be lost and the manifest would name a missing object);
    ``forget_failed()`` drops them when the rows they hold are dropped (a reset).
    """

    def __init__(
        self,
        storage: Storage,
        max_in_flight: int = 4,
        inline: bool | None = None,
        batches: bool = False,
        keep_failed: bool = False,
    ) -> None:
        self._storage = storage
        self._keep_failed = keep_failed
        self._failed: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self._failed_lock = threading.Lock()
        self._inline = storage.memory_resident if inline is None else inline
        self._max = max_in_flight
        self._pool: ThreadPoolExecutor | None = None
        self._futures: deque[Future] = deque()
        # batches: failures are reported per batch (``end_batch``), never by a later put
        self._batch: list[Future] | None = [] if batches else None

    def put(self, key: str, parts: Sequence[bytes | memoryview]) -> None:
        """Store the concatenated ``parts`` under ``key`` (in the background)."""
        self._submit(self._storage.put_parts, key, parts)

    def _submit(self, fn: Callable[..., None], *args: Any) -> None:
        if self._inline:
            fn(*args)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tl-chunk-writer")
        future = self._pool.submit(self._run, fn, args)
        self._futures.append(future)
        if self._batch is not None:
            self._batch.append(future)
        while len(self._futures) > self._max:
            if self._batch is not None:
                wait([self._futures.popleft()])
                continue
            try:
                self._futures.popleft().result()
            except BaseException:
                self._drain()  # leave nothing running behind the error we raise
                raise

    def _run(self, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        except BaseException:
            if self._keep_failed:
                with self._failed_lock:
                    self._failed.append((fn, args))
            raise

    def forget_failed(self) -> None:
        """Never try the failed puts again: the rows they held are dropped."""
        with self._failed_lock:
            self._failed.clear()

    def _drain(self) -> None:
        while self._futures:
            try:
                self._futures.popleft().result()
            except BaseException:
                pass

    def wait(self) -> None:
        """Block until every write so far is stored (the failed ones kept are tried again
        first); raise the first that failed."""
        with self._failed_lock:
            failed, self._failed = self._failed, []
        for fn, args in failed:  # unbounded: a failure must not lose the others
            assert self._pool is not None  # they failed on it
            self._futures.append(self._pool.submit(self._run, fn, args))
        futures, self._futures = self._futures, deque()
        _wait_all(futures)

    def barrier(self) -> Callable[[], None]:
        """A function that waits for the writes submitted so far (and raises the first
        failure), safe to call from another thread while more are submitted."""
        futures = list(self._futures)
        return lambda: _wait_all(futures)

    def end_batch(self, callback: Callable[[BaseException | None], None]) -> None:
        """(A writer made with ``batches=True``.) Call ``callback`` (on a writer thread,
        or now) once every write since the last batch ended is stored, with the first
        failure or None; later writes are not waited for."""
        assert self._batch is not None
        futures, self._batch = self._batch, []
        if not futures:
            callback(None)
            return
        left = [len(futures)]
        errors: list[BaseException] = []
        lock = threading.Lock()

        def done(future: Future) -> None:
            with lock:
                error = future.exception()
                if error is not None:
                    errors.append(error)
                left[0] -= 1
                last = left[0] == 0
            if last:
                callback(errors[0] if errors else None)

        for future in futures:
            future.add_done_callback(done)

    def wait_batch(self) -> None:
        """(A writer made with ``batches=True``.) End the batch; block until its writes
        are stored, and raise the first that failed."""
        assert self._batch is not None
        futures, self._batch = self._batch, []
        _wait_all(futures)

    def close(self) -> None:
        """Wait for the writes in flight (never the failed ones again), stop the threads."""
        self.forget_failed()
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None


def _wait_all(futures: Iterable[Future]) -> None:
    first_error: BaseException | None = None
    for future in futures:
        try:
            future.result()
        except BaseException as err:  # keep waiting for the rest, report the first
            first_error = first_error or err
    if first_error is not None:
        if isinstance(first_error, StorageError):
            raise first_error
        raise StorageError(f"Writing a chunk failed: {first_error}") from first_error


class ChunkCache:
    """Recently read chunks (byte budget) and chunk headers (count budget), thread-safe."""

    def __init__(self, max_bytes: int | None = None, max_headers: int = 4096) -> None:
        self._max_bytes = max_bytes if max_bytes is not None else config.cache_bytes() // 4
        self._chunks: OrderedDict[str, Chunk] = OrderedDict()
        self._headers: OrderedDict[str, ChunkHeader] = OrderedDict()
        self._max_headers = max_headers
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> Chunk | None:
        with self._lock:
            chunk = self._chunks.get(key)
            if chunk is not None:
                self._chunks.move_to_end(key)
            return chunk

    def put(self, chunk: Chunk) -> None:
        if chunk.nbytes > self._max_bytes:
            return
        with self._lock:
            if chunk.key in self._chunks:
                return
            self._chunks[chunk.key] = chunk
            self._bytes += chunk.nbytes
            while self._bytes > self._max_bytes:
                _, old = self._chunks.popitem(last=False)
                self._bytes -= old.nbytes

    def header(self, storage: Storage, key: str, header_nbytes: int) -> ChunkHeader:
        """The header of ``key``: from a cached chunk, the header cache, or one ranged read."""
        header = self.cached_header(key)
        if header is None:
            header = self.put_header(
                key, decode_header(storage.get_range(key, 0, header_nbytes), key)
            )
        return header

    def cached_header(self, key: str) -> ChunkHeader | None:
        """The header of ``key`` if a cached chunk or the header cache holds it."""
        chunk = self.get(key)
        if chunk is not None:
            return chunk.header
        with self._lock:
            return self._headers.get(key)

    def put_header(self, key: str, header: ChunkHeader) -> ChunkHeader:
        with self._lock:
            self._headers[key] = header
            while len(self._headers) > self._max_headers:
                self._headers.popitem(last=False)
        return header

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()
            self._headers.clear()
            self._bytes = 0
