"""What only a compute worker process does: install the job once, run blocks, report.

A process worker gets the job once, at start (inherited when forked, else serialised
with cloudpickle, so functions and closures defined in ``__main__`` or a notebook
work), opens the target storage itself and writes its chunks there directly, behind
its next block. It reports items done and blocks stored through one pipe all workers
share (``REPORT`` messages, read by the parent's relay in ``schedulers.processed``),
and exits on its own once the parent is gone.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import os
import pickle
import secrets
import struct
import threading
import time
from typing import Any

from tensorlake.compute.cluster import keep_freed_memory, open_input, open_target
from tensorlake.compute.worker import BlockResult, Job, Stage, Task, run_block
from tensorlake.engine.tensor.chunk_io import ChunkWriter
from tensorlake.storage import MemoryStorage

__all__ = [
    "MAX_ERROR_TEXT",
    "NOT_STORED",
    "PROGRESS",
    "REPORT",
    "STORED",
    "UPLOADS_IN_FLIGHT",
    "init_process",
    "run_in_process",
]

_process: dict[str, Any] = {}  # this worker's job, stages, storage, input, progress pipe


def init_process(job: Job, progress: Any, parent_pid: int, stages: list[Stage] | None) -> None:
    """Process-pool initializer: install the job once per worker process (``stages``
    when the worker was forked, else from ``job.stages``)."""
    if job.environ is not None:  # not forked: the caller's environment, as a fork has it
        os.environ.clear()
        os.environ.update(job.environ)
    if stages is None:
        assert job.stages is not None
        stages = pickle.loads(job.stages)
    elif job.links is not None:  # forked: never share the parent's open connections
        job = dataclasses.replace(job, links=pickle.loads(pickle.dumps(job.links)))
    _process.update(job=job, stages=stages, progress=progress)
    keep_freed_memory()
    # What the worker starts with (a forked copy of the caller's objects, the transform's
    # arguments) lives as long as it does: keep the collector from scanning it again and
    # again, which also writes to, and so copies, the pages shared with the parent.
    gc.freeze()
    _process["storage"] = None
    _process["input"] = None
    threading.Thread(
        target=_exit_with_parent, args=(parent_pid,), name="tl-parent-watch", daemon=True
    ).start()


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
    """Run one block in this worker process (the process pool's task): the storage
    and the input dataset are opened on the first block; a memory target gets the
    chunk bytes back in the result."""
    job = _process["job"]
    if _process["storage"] is None:
        _process["storage"] = open_target(job)
    if _process["input"] is None:
        _process["input"] = open_input(job)
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
