"""Where blocks run: in the caller (serial), on threads, or in worker processes.

Every scheduler exposes the same small interface: ``submit(task) -> Future``,
``stop()`` (abandon what is running, at once) and ``close()``. Processes come from the
stdlib's ``ProcessPoolExecutor``: it reports a worker that died as ``BrokenProcessPool``
where ``multiprocessing.Pool`` hangs. They are forked when no other thread runs (our own
heartbeat is paused for the moment), which starts them at once with the pipeline as it
is. Forking while a thread runs is unsafe, so otherwise they come from a forkserver and
the pipeline travels as cloudpickle bytes: closures and functions from ``__main__`` or
a notebook work either way.
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
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing.connection import wait as connection_wait
from typing import Any

import cloudpickle

from tensorlake import config
from tensorlake.compute.worker import (
    NOT_STORED,
    PROGRESS,
    REPORT,
    BlockResult,
    Job,
    Stage,
    Task,
    init_process,
    run_block,
    run_in_process,
)
from tensorlake.engine.lock.heartbeat import heartbeat_paused
from tensorlake.storage import Storage

SCHEDULERS = ("serial", "threaded", "processed")
_PRELOAD = ["numpy", "tensorlake", "tensorlake.compute.worker"]


class _Serial:
    """Runs each block when it is submitted, in the caller's thread."""

    def __init__(self, run: Callable[[Task], BlockResult]) -> None:
        self._run = run

    def submit(self, task: Task) -> Future:
        future: Future = Future()
        try:
            future.set_result(self._run(task))
        except BaseException as err:
            future.set_exception(err)
        return future

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


class _Pool:
    """Blocks on an executor; ``stop`` abandons the running ones as fast as it can."""

    def __init__(self, executor: Executor, stop_flag: threading.Event, run: Callable) -> None:
        self._executor = executor
        self._stop_flag = stop_flag
        self._run = run

    def submit(self, task: Task) -> Future:
        return self._executor.submit(self._run, task)

    def stop(self) -> None:
        self._stop_flag.set()
        if isinstance(self._executor, ProcessPoolExecutor):
            # kill the workers: blocks still running must not write after we clean up
            for process in list((getattr(self._executor, "_processes", None) or {}).values()):
                if process.is_alive():
                    process.kill()
            for process in list((getattr(self._executor, "_processes", None) or {}).values()):
                process.join(5)
        self._executor.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def make_scheduler(
    scheduler: str,
    num_workers: int,
    job: Job,
    stages: list[Stage],
    storage: Storage,
    input_dataset: Any,
    progress: Callable[[int], None],
    stored: Callable[[int, str | None], None],
) -> tuple[Any, Callable[[], None]]:
    """The scheduler for an eval, and a function that ends its progress relay.
    ``stored(start, error)`` hears when worker processes have stored (or failed to
    store) the chunks of a block whose result said they were still uploading."""
    stop_flag = threading.Event()

    def run_here(task: Task) -> BlockResult:
        return run_block(job, stages, task, storage, input_dataset, progress, stop_flag.is_set)

    if scheduler == "serial" or num_workers <= 0:
        return _Serial(run_here), lambda: None
    if scheduler == "threaded":
        executor = ThreadPoolExecutor(num_workers, thread_name_prefix="tl-compute")
        return _Pool(executor, stop_flag, run_here), lambda: None
    # the parent keeps the writing end open until the end: a worker started later gets it
    executor, (progress_reader, progress_writer) = _start_processes(num_workers, job, stages)
    stop_reader, stop_writer = multiprocessing.Pipe(duplex=False)
    relay = threading.Thread(
        target=_relay,
        args=(progress_reader, progress, stored, stop_reader),
        name="tl-compute-progress",
        daemon=True,
    )
    relay.start()

    def end_relay() -> None:
        stop_writer.send_bytes(b"stop")
        relay.join(5)
        for conn in (progress_reader, progress_writer, stop_reader, stop_writer):
            conn.close()

    return _Pool(executor, stop_flag, run_in_process), end_relay


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
            job = dataclasses.replace(job, stages=_dump(stages))
        progress_reader, progress_writer = context.Pipe(duplex=False)
        executor = ProcessPoolExecutor(
            num_workers,
            mp_context=context,
            initializer=init_process,
            initargs=(job, progress_writer, os.getpid(), stages if fork else None),
        )
        with _main_not_rerun(), warnings.catch_warnings():
            # Python 3.12+ warns on fork when native threads (BLAS pools) exist; no
            # Python thread runs here, and native pools are fork-safe
            warnings.filterwarnings(
                "ignore", "This process .* is multi-threaded", DeprecationWarning
            )
            for future in [executor.submit(os.getpid) for _ in range(num_workers)]:
                future.result()
    return executor, (progress_reader, progress_writer)


def _dump(stages: list[Stage]) -> bytes:
    try:
        return cloudpickle.dumps(stages)
    except Exception as err:
        raise TypeError(
            f"The transform or its arguments cannot be sent to worker processes ({err}). "
            "Use scheduler='threaded', or pass picklable arguments."
        ) from err


@contextlib.contextmanager
def _main_not_rerun() -> Iterator[None]:
    """Start processes without the child importing the caller's ``__main__`` again.

    spawn and forkserver children re-run the main script (as ``__mp_main__``) so that
    pickled references into it resolve. The pipeline and the items travel by value
    (cloudpickle), so that is not needed, and re-running a script's top level in every
    worker is slow and, in scripts without an ``if __name__ == "__main__"`` guard, fatal.
    """
    main = sys.modules["__main__"]
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
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
