"""What runs in a compute worker: a block of input items in, a block descriptor out.

Workers run in the parent (serial), in threads, or in processes. A process worker gets
the job once, at start (inherited when forked, else serialised with cloudpickle, so
functions and closures defined in ``__main__`` or a notebook work), opens the target
storage itself and writes its chunks there directly.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import gc
import os
import pickle
import reprlib
import secrets
import struct
import threading
import time
import traceback
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from tensorlake import config
from tensorlake.api.factory import load
from tensorlake.compute.sample_out import SampleOut, rows_of
from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.links.resolver import LinkResolver
from tensorlake.engine.tensor.block import BlockDescriptor, BlockWriter
from tensorlake.engine.tensor.chunk_io import ChunkWriter
from tensorlake.storage import MemoryStorage, Storage, from_url

Stage = tuple[Callable[..., Any], dict[str, Any]]  # a transform function and its kwargs


@dataclass(slots=True)
class Job:
    """Everything every block of one ``eval`` shares."""

    tensors: list[str]
    target_url: str
    target_creds: dict | None
    ignore_errors: bool
    skip_ok: bool
    input_dataset: tuple[str, dict | None, str] | None = None  # url, creds, commit id
    links: LinkResolver | None = None  # creds keys and the creds populated (memory only)
    stages: bytes | None = None  # list[Stage] by cloudpickle, for workers that are not forked


@dataclass(slots=True)
class Task:
    """One block: input items ``[start, start + len)`` (rows, for a dataset input)."""

    start: int
    items: list[Any] | None  # None: rows of the input dataset
    count: int
    metas: dict[str, dict[str, Any]]  # tensor metas when the block was submitted

    def __reduce__(self) -> tuple:
        # items may be instances of classes defined in __main__: send them by value
        fields = (self.start, self.items, self.count, self.metas)
        return (_task_from_bytes, (cloudpickle.dumps(fields),))


def _task_from_bytes(data: bytes) -> Task:
    return Task(*pickle.loads(data))


@dataclass(slots=True)
class ItemFailure:
    index: int
    item_repr: str
    error: BaseException
    traceback: str


@dataclass(slots=True)
class BlockResult:
    start: int
    count: int
    descriptor: BlockDescriptor | None
    failed: list[int] = field(default_factory=list)
    failure: ItemFailure | None = None
    uploading: bool = False  # its chunks are still being stored: a STORED message follows


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, as text (the cause of the error)."""

    def __str__(self) -> str:
        return "\n" + self.args[0]


def short_repr(item: Any) -> str:
    r = reprlib.Repr()
    r.maxstring, r.maxother, r.maxlist, r.maxdict = 80, 80, 6, 6
    return r.repr(item)


# -- per-process state -------------------------------------------------------------------

_state = threading.local()
_process: dict[str, Any] = {}


def init_process(job: Job, progress: Any, parent_pid: int, stages: list[Stage] | None) -> None:
    """Process-pool initializer: install the job once per worker process (``stages``
    when the worker was forked, else from ``job.stages``)."""
    if stages is None:
        assert job.stages is not None
        stages = pickle.loads(job.stages)
    elif job.links is not None:  # forked: never share the parent's open connections
        job = dataclasses.replace(job, links=pickle.loads(pickle.dumps(job.links)))
    _process.update(job=job, stages=stages, progress=progress)
    _keep_freed_memory()
    # What the worker starts with (a forked copy of the caller's objects, the transform's
    # arguments) lives as long as it does: keep the collector from scanning it again and
    # again, which also writes to, and so copies, the pages shared with the parent.
    gc.freeze()
    _process["storage"] = None
    _process["input"] = None
    threading.Thread(
        target=_exit_with_parent, args=(parent_pid,), name="tl-parent-watch", daemon=True
    ).start()


def _keep_freed_memory() -> None:
    """Have glibc keep freed buffers for reuse instead of returning them to the system.

    By default a freed buffer above a few MB (a chunk, a decoded mask) is unmapped, and
    the next one faults in fresh pages (about 2.5 us each here): 50 faults an item on
    the COCO workflow, which this cuts to 8. A worker's heap then stays at its peak.
    Elsewhere than glibc, nothing changes.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # glibc's maximum
    mallopt(_M_TRIM_THRESHOLD, 256 << 20)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def _exit_with_parent(parent_pid: int) -> None:
    """Exit once the parent is gone: an idle worker would wait for work forever, a busy
    one would keep writing chunks nobody will adopt."""
    while True:
        time.sleep(0.1)
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            os._exit(1)


def run_in_process(task: Task) -> BlockResult:
    job = _process["job"]
    if _process["storage"] is None and not job.target_url.startswith("mem://"):
        storage = from_url(job.target_url, creds=job.target_creds)
        # nobody reads the chunks soon: big ones may skip the page cache
        storage.set_direct_write_min(config.direct_write_min_bytes())
        _process["storage"] = storage
    if _process["input"] is None and job.input_dataset is not None:
        url, creds, commit_id = job.input_dataset
        _process["input"] = load(url, read_only=True, creds=creds, version=commit_id)
    ship = _process["storage"] is None  # a memory target: send the chunk bytes back
    storage = (
        MemoryStorage(f"tl-worker-{os.getpid()}-{secrets.token_hex(4)}")
        if ship
        else _process["storage"]
    )
    reporter = _PipeProgress(_process["progress"])
    try:
        stages = _process["stages"]
        # Chunk writes (uploads, or direct and fsynced writes to a local disk: all wait on
        # I/O, not the CPU) go on behind the next block; the parent hears when they are
        # stored, durably.
        uploader = None
        if not storage.memory_resident:
            uploader = _process.get("uploader")
            if uploader is None:
                uploader = ChunkWriter(storage, UPLOADS_IN_FLIGHT, batches=True)
                _process["uploader"] = uploader
        result = run_block(
            job,
            stages,
            task,
            storage,
            _process["input"],
            reporter,
            ship=ship,
            chunk_writer=uploader,
        )
        if uploader is not None:
            if result.descriptor is None:  # a failed block: its chunks are never adopted
                uploader.end_batch(lambda error: None)
            elif result.descriptor.met_class_names():
                uploader.wait_batch()  # the parent reads these label rows to renumber them
            else:
                result.uploading = True
                uploader.end_batch(functools.partial(reporter.stored, task.start))
        return result
    finally:
        reporter.flush()
        if ship:
            MemoryStorage.drop(storage.url.removeprefix("mem://"))


UPLOADS_IN_FLIGHT = 8  # chunk puts a worker keeps going (each up to a chunk's size)


class _PipeProgress:
    """Reports items done to the parent at most ten times a second, and blocks whose
    chunks are stored.

    Each report is one write of a few hundred bytes at most to a pipe all workers share:
    the kernel makes writes under ``PIPE_BUF`` atomic, so no lock across processes
    (which a killed worker could leave held) and no feeder thread (a queue's, which
    wakes for every report) are needed. The lock here orders this worker's own threads.
    """

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.pending, self.last = 0, time.monotonic()

    def __call__(self, n: int) -> None:
        self.pending += n
        now = time.monotonic()
        if now - self.last >= 0.1:
            self.last = now
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self._send(REPORT.pack(PROGRESS, self.pending))
            self.pending = 0

    def stored(self, start: int, error: BaseException | None) -> None:
        """The chunks of the block starting at input item ``start`` are stored (or not)."""
        if error is None:
            self._send(REPORT.pack(STORED, start))
        else:
            text = f"{type(error).__name__}: {error}"[:MAX_ERROR_TEXT]
            self._send(REPORT.pack(NOT_STORED, start) + text.encode(errors="replace"))

    def _send(self, message: bytes) -> None:
        with _send_lock:
            self.conn.send_bytes(message)


_send_lock = threading.Lock()
# one report: its kind and a number (items done since the last, or a block's start),
# then for NOT_STORED the error's text
REPORT = struct.Struct("<Bq")
PROGRESS, STORED, NOT_STORED = 0, 1, 2
MAX_ERROR_TEXT = 400  # bytes: the whole report stays under PIPE_BUF


# -- one block ---------------------------------------------------------------------------


def run_block(
    job: Job,
    stages: list[Stage],
    task: Task,
    storage: Storage,
    input_dataset: Any,
    progress: Callable[[int], None],
    should_stop: Callable[[], bool] = lambda: False,
    ship: bool = False,
    background_writes: bool = True,
    chunk_writer: ChunkWriter | None = None,
) -> BlockResult:
    """Run every item of ``task`` through the pipeline, writing rows as chunks
    (``ship``: also return their bytes, for a target the worker cannot reach;
    ``chunk_writer``: the caller's, which goes on storing them after this returns)."""
    metas = {name: TensorMeta.from_dict(task.metas[name]) for name in job.tensors}
    writer = BlockWriter(storage, metas, ship, job.links, background_writes, chunk_writer)
    result = BlockResult(task.start, task.count, None)
    tensors = frozenset(job.tensors)
    for offset in range(task.count):
        if should_stop():  # the eval failed elsewhere: stop writing
            writer.abandon()
            return result
        index = task.start + offset
        item = input_dataset[index] if task.items is None else task.items[offset]
        try:
            columns = run_stages(stages, item, tensors)
            if columns:
                writer.append(columns, skip_ok=job.skip_ok)
            # free the item's arrays now, so the next item reuses their memory while it is
            # still in the CPU's caches: the COCO transform ran ~5% faster in a worker
            del columns
        except Exception as err:
            if job.ignore_errors:
                result.failed.append(index)
            else:
                result.failure = ItemFailure(
                    index, short_repr(item), _portable(err), traceback.format_exc()
                )
                break
        progress(1)
    if result.failure is None:
        result.descriptor = writer.finish()
    else:
        writer.abandon()
    return result


def run_stages(stages: list[Stage], item: Any, tensors: Collection[str]) -> dict[str, list[Any]]:
    """The rows one input item becomes after every transform of the pipeline."""
    items = [item]
    columns: dict[str, list[Any]] = {}
    for k, (fn, kwargs) in enumerate(stages):
        last = k == len(stages) - 1
        out = SampleOut(tensors if last else None)
        for it in items:
            fn(it, out, **kwargs)
        columns = out.take()
        if not last:
            items = rows_of(columns)
    return columns


def _portable(err: BaseException) -> BaseException:
    """``err`` if it survives pickling (to reach the parent), else a stand-in."""
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        return RuntimeError(f"{type(err).__name__}: {err}")
