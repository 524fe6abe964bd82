"""The ``"ray"`` scheduler: blocks as Ray tasks, which write their chunks themselves.

It runs on the cluster this process is connected to (``ray.init(address=...)`` before
the eval); if none, it starts a local one with ``num_workers`` CPUs and keeps it for the
process's later evals. Each block is a task of one CPU that stores its chunks on the
target storage (S3, or a filesystem every node sees) and returns only its chunk table.
A task whose worker is lost is retried by Ray (``MAX_RETRIES``); its rows come only
from the attempt that returns, so nothing is duplicated or lost. ``stop`` cancels every
task with ``force=True``, which kills their workers: none writes after it returns.

``ray`` is imported when the scheduler is made, never by ``import tensorlake``.
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from tensorlake.compute.cluster import Slots, cluster_job, run_cluster_block
from tensorlake.compute.schedulers.base import SchedulerContext
from tensorlake.compute.worker import BlockResult, Task

__all__ = ["MAX_RETRIES", "RayScheduler", "ray_module"]

MAX_RETRIES = 3  # times Ray runs a block again whose worker was lost
LOCAL_OBJECT_STORE = 256 << 20  # bytes: a local cluster's store (results are small)
STOP_WAIT = 30.0  # seconds stop() waits for cancelled tasks to end

_started: dict[str, int] = {}  # "cpus" of the local cluster this process started
_start_lock = threading.Lock()


def ray_module() -> Any:
    """``ray``, imported now; an ``ImportError`` naming the extra when it is missing."""
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            "scheduler='ray' needs Ray, which is not installed: pip install 'tensorlake[ray]'."
        ) from err
    return ray


def _connect(ray: Any, num_workers: int) -> None:
    """Use the cluster this process is connected to; else start a local one sized by
    ``num_workers`` (a larger one if ours is too small for this eval)."""
    with _start_lock:
        if ray.is_initialized():
            if "cpus" not in _started or _started["cpus"] >= num_workers:
                return
            ray.shutdown()  # our own local cluster, too small for this eval
        ray.init(
            num_cpus=num_workers,
            object_store_memory=LOCAL_OBJECT_STORE,
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=True,
        )
        if "cpus" not in _started:
            atexit.register(_shutdown, ray)
        _started["cpus"] = num_workers


def _shutdown(ray: Any) -> None:
    if ray.is_initialized():
        ray.shutdown()


class RayScheduler:
    """One Ray task per block, ``num_workers`` of them running at once at most."""

    def __init__(self, context: SchedulerContext) -> None:
        self._context = context
        job = cluster_job(context.job, context.stages)  # a TypeError now if unpicklable
        ray = ray_module()
        _connect(ray, context.num_workers)
        self._ray = ray
        self._job = ray.put(job)
        self._remote = ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(
            run_cluster_block
        )
        self._running: dict[Any, None] = {}  # refs not yet resolved, in submit order
        self._lock = threading.Lock()
        self._slots = Slots(context.num_workers, self._start)

    def submit(self, task: Task) -> Future[BlockResult]:
        return self._slots.submit(task)

    def _start(self, task: Task, future: Future[BlockResult]) -> None:
        try:
            ref = self._remote.remote(self._job, task)
        except BaseException as err:
            self._slots.ended()
            future.set_exception(err)
            return
        with self._lock:
            self._running[ref] = None
        ref.future().add_done_callback(functools.partial(self._settle, ref, future))

    def _settle(self, ref: Any, future: Future[BlockResult], done: Future[Any]) -> None:
        with self._lock:
            self._running.pop(ref, None)
        self._slots.ended()
        error = done.exception()
        if error is None:
            result = done.result()
            if result.failure is None:
                self._context.progress(result.count)
            future.set_result(result)
        else:
            future.set_exception(_portable_error(self._ray, error))

    def stop(self) -> None:
        self._slots.drop_waiting()
        with self._lock:
            refs = list(self._running)
        for ref in refs:
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # finished meanwhile
                pass
        if refs:
            self._ray.wait(refs, num_returns=len(refs), timeout=STOP_WAIT)

    def close(self) -> None:
        pass

    def release(self) -> None:
        self._job = None  # the job's object may go from the object store


def _portable_error(ray: Any, error: BaseException) -> BaseException:
    """The error the eval acts on: a lost worker (after Ray's retries) is a
    ``BrokenProcessPool``, as a dead process worker is; an exception raised in the task
    is itself."""
    exceptions = ray.exceptions
    if isinstance(error, exceptions.RayTaskError):
        cause = getattr(error, "cause", None)
        return cause if isinstance(cause, BaseException) else error
    if isinstance(error, exceptions.TaskCancelledError):
        return error
    if isinstance(error, exceptions.RayError):
        return BrokenProcessPool(f"A Ray worker was lost ({type(error).__name__}: {error}).")
    return error
