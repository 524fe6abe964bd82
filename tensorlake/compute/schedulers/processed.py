"""The ``"processed"`` scheduler: blocks in worker processes, which write their own chunks.

Processes come from the stdlib's ``ProcessPoolExecutor``: it reports a worker that died
as ``BrokenProcessPool`` where ``multiprocessing.Pool`` hangs. They are forked when no
other thread runs (our own heartbeat is paused for the moment), which starts them at
once with the pipeline as it is. Forking while a thread runs is unsafe, so otherwise
they come from a forkserver and the pipeline travels as cloudpickle bytes: closures and
functions from ``__main__`` or a notebook work either way. A relay thread passes the
workers' reports (items done, blocks stored) from their shared pipe to the eval.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait as connection_wait
from typing import Any

from tensorlake import config
from tensorlake.compute.cluster import dump_stages
from tensorlake.compute.process_worker import (
    NOT_STORED,
    PROGRESS,
    REPORT,
    init_process,
    run_in_process,
)
from tensorlake.compute.schedulers.base import SchedulerContext
from tensorlake.compute.worker import BlockResult, Job, Stage, Task
from tensorlake.engine.lock.heartbeat import heartbeat_paused
from tensorlake.errors import TransformError

__all__ = ["ProcessScheduler", "main_not_rerun"]

# what a forkserver imports once, so that each worker it forks starts with them
_PRELOAD = ["numpy", "tensorlake", "tensorlake.compute.process_worker"]


class ProcessScheduler:
    """``num_workers`` processes, all started before the first block is submitted;
    ``stop`` kills them (a block still running must not write after the cleanup)."""

    def __init__(self, context: SchedulerContext) -> None:
        self._stop_flag = threading.Event()
        # the parent keeps the writing end open until the end: a worker started later
        # gets it
        self._executor, (self._progress_reader, self._progress_writer) = _start_processes(
            context.num_workers, context.job, context.stages
        )
        self._stop_reader, self._stop_writer = multiprocessing.Pipe(duplex=False)
        self._relay = threading.Thread(
            target=_relay,
            args=(self._progress_reader, context.progress, context.stored, self._stop_reader),
            name="tl-compute-progress",
            daemon=True,
        )
        self._relay.start()

    def submit(self, task: Task) -> Future[BlockResult]:
        return self._executor.submit(run_in_process, task)

    def stop(self) -> None:
        self._stop_flag.set()
        # kill the workers: blocks still running must not write after we clean up
        for process in list((getattr(self._executor, "_processes", None) or {}).values()):
            if process.is_alive():
                process.kill()
        for process in list((getattr(self._executor, "_processes", None) or {}).values()):
            process.join(5)
        self._executor.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        # a worker killed after its last result, with chunks still to store, breaks no
        # future: only its exit code tells
        processes = list((getattr(self._executor, "_processes", None) or {}).values())
        self._executor.shutdown(wait=True)
        if any(process.exitcode for process in processes):  # killed (< 0) or crashed
            raise BrokenProcessPool("a worker process died after its last block")

    def release(self) -> None:
        """End the progress relay (after the last report) and close the pipes."""
        self._stop_writer.send_bytes(b"stop")
        self._relay.join(5)
        for conn in (
            self._progress_reader,
            self._progress_writer,
            self._stop_reader,
            self._stop_writer,
        ):
            conn.close()


def _start_processes(
    num_workers: int, job: Job, stages: list[Stage]
) -> tuple[ProcessPoolExecutor, tuple[Any, Any]]:
    """Start every worker now, and the pipe of their progress reports. Forked workers
    inherit the pipeline as it is (no pickling, no imports: the fastest start); otherwise
    it travels as cloudpickle bytes."""
    with heartbeat_paused():  # no thread of ours may run while we fork
        context = _context()
        fork = context.get_start_method() == "fork"
        if not fork:
            job = dataclasses.replace(job, stages=dump_stages(stages), environ=dict(os.environ))
        progress_reader, progress_writer = context.Pipe(duplex=False)
        executor = ProcessPoolExecutor(
            num_workers,
            mp_context=context,
            initializer=init_process,
            initargs=(job, progress_writer, os.getpid(), stages if fork else None),
        )
        with main_not_rerun(), warnings.catch_warnings():
            # Python 3.12+ warns on fork when native threads (BLAS pools) exist; no
            # Python thread runs here, and native pools are fork-safe
            warnings.filterwarnings(
                "ignore", "This process .* is multi-threaded", DeprecationWarning
            )
            try:
                for future in [executor.submit(os.getpid) for _ in range(num_workers)]:
                    future.result()
            except BrokenProcessPool:  # a worker killed as it started: nothing ran yet
                executor.shutdown(wait=True, cancel_futures=True)
                raise TransformError(
                    "A worker process died (killed, out of memory or crashed) while the "
                    "workers were starting, before any item was processed. Nothing was "
                    "written: run eval again."
                ) from None
    return executor, (progress_reader, progress_writer)


@contextlib.contextmanager
def main_not_rerun() -> Iterator[None]:
    """Start processes without the child importing the caller's ``__main__`` again.

    spawn and forkserver children re-run the main script (as ``__mp_main__``) so that
    pickled references into it resolve. The pipeline and the items travel by value
    (cloudpickle), so that is not needed, and re-running a script's top level in every
    worker is slow and, in scripts without an ``if __name__ == "__main__"`` guard, fatal.
    """
    main = sys.modules["__main__"]
    saved: dict[str, Any] = {
        k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__
    }
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


def _context() -> multiprocessing.context.BaseContext:
    """fork on Linux when that is safe (no other thread runs), else forkserver (spawn
    where there is none); ``TENSORLAKE_START_METHOD`` forces one. (macOS system
    libraries break in forked children whatever the threads.)"""
    available = multiprocessing.get_all_start_methods()
    method = config.start_method()
    if method == "auto":
        alone = threading.active_count() == 1
        method = "fork" if alone and sys.platform.startswith("linux") else "forkserver"
    if method == "forkserver" and "forkserver" not in available:
        method = "spawn"
    if method not in available:
        raise ValueError(f"This platform cannot start processes by {method!r}.")
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(_PRELOAD)
    return context


def _relay(
    reader: Any,
    progress: Callable[[int], None],
    stored: Callable[[int, str | None], None],
    stop: Any,
) -> None:
    """Pass the workers' reports on as they come (blocking: no polling) until ``stop``
    says the eval is over; then what is left in the pipe."""
    stopping = False
    while not stopping:
        stopping = stop in connection_wait([reader, stop])
        while reader.poll():
            try:
                message = reader.recv_bytes()
            except (EOFError, OSError):  # closed under us: the eval is over
                return
            kind, number = REPORT.unpack_from(message)
            with contextlib.suppress(Exception):  # keep draining, or workers would block
                if kind == PROGRESS:
                    progress(number)
                else:
                    error = message[REPORT.size :].decode(errors="replace")
                    stored(number, error if kind == NOT_STORED else None)
