"""The ``"dask"`` scheduler: blocks as Dask tasks, which write their chunks themselves.

It runs on the ``distributed.Client`` passed as ``eval(..., client=...)``, else on the
current one (``distributed.get_client()``); if there is none, it starts a
``LocalCluster`` of ``num_workers`` single-threaded worker processes and keeps it for the
process's later evals. Each block stores its chunks on the target storage (S3, or a
filesystem every worker sees) and returns only its chunk table. A block whose worker
dies is run again by Dask (up to its ``allowed-failures``); its rows come only from the
attempt that returns, so nothing is duplicated or lost.

Dask cannot kill a running task, so ``stop`` sets a cluster-wide event that each block
checks between items (at most every 0.25 s) and waits until every block submitted has
ended: none writes after it returns.

``distributed`` is imported when the scheduler is made, never by ``import tensorlake``.
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from tensorlake.compute.cluster import (
    ClusterJob,
    Slots,
    Throttled,
    cluster_job,
    run_cluster_block,
)
from tensorlake.compute.schedulers.base import SchedulerContext
from tensorlake.compute.schedulers.processed import main_not_rerun
from tensorlake.compute.worker import BlockResult, Task

__all__ = ["DaskScheduler", "distributed_module", "run_dask_block"]

STOP_WAIT = 60.0  # seconds stop() waits for the blocks submitted to end

_local: dict[str, Any] = {}  # the LocalCluster and Client this process started
_start_lock = threading.Lock()


def distributed_module() -> Any:
    """``distributed``, imported now; an ``ImportError`` naming the extra when missing."""
    try:
        import distributed
    except ImportError as err:
        raise ImportError(
            "scheduler='dask' needs dask.distributed, which is not installed: "
            "pip install 'tensorlake[dask]'."
        ) from err
    return distributed


def _client(distributed: Any, client: Any, num_workers: int) -> Any:
    """``client``, else the current client, else a local cluster of ours (grown to
    ``num_workers`` workers if it is smaller)."""
    if client is not None:
        if not isinstance(client, distributed.Client):
            raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}.")
        return client
    with _start_lock:
        if "client" not in _local:
            try:
                return distributed.get_client()
            except ValueError:  # no client: start a local cluster
                pass
            with main_not_rerun():  # its worker processes are spawned
                cluster = distributed.LocalCluster(
                    n_workers=num_workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            _local.update(cluster=cluster, client=distributed.Client(cluster, set_as_default=False))
            atexit.register(_close_local)
        client = _local["client"]
        if len(client.scheduler_info(n_workers=-1)["workers"]) < num_workers:
            with main_not_rerun():
                _local["cluster"].scale(num_workers)
                client.wait_for_workers(num_workers)
        return client


def _close_local() -> None:
    for key in ("client", "cluster"):
        thing = _local.pop(key, None)
        if thing is not None:
            try:
                thing.close()
            except Exception:
                pass


def run_dask_block(cjob: ClusterJob, task: Task, stop_event: str) -> BlockResult:
    """A Dask task: run one block on this worker, ending early once the eval's stop
    event is set."""
    distributed = distributed_module()
    event = distributed.Event(stop_event, client=distributed.get_client())
    return run_cluster_block(cjob, task, Throttled(event.is_set))


class DaskScheduler:
    """One Dask task per block, ``num_workers`` of them running at once at most."""

    def __init__(self, context: SchedulerContext) -> None:
        self._context = context
        job = cluster_job(context.job, context.stages)  # a TypeError now if unpicklable
        distributed = distributed_module()
        self._distributed = distributed
        self._client = _client(distributed, context.client, context.num_workers)
        [self._job] = self._client.scatter([job], broadcast=True, hash=False)
        self._stop_event = f"tensorlake-stop-{job.token}"
        self._futures: dict[Any, None] = {}  # running, not yet ended
        self._lock = threading.Lock()
        self._slots = Slots(context.num_workers, self._start)

    def submit(self, task: Task) -> Future[BlockResult]:
        return self._slots.submit(task)

    def _start(self, task: Task, future: Future[BlockResult]) -> None:
        try:
            remote = self._client.submit(
                run_dask_block, self._job, task, self._stop_event, pure=False
            )
        except BaseException as err:
            self._slots.ended()
            future.set_exception(err)
            return
        with self._lock:
            self._futures[remote] = None
        remote.add_done_callback(functools.partial(self._settle, future))

    def _settle(self, future: Future[BlockResult], remote: Any) -> None:
        self._slots.ended()
        try:
            if remote.status == "finished":
                result = remote.result()
                if result.failure is None:
                    self._context.progress(result.count)
                future.set_result(result)
            elif remote.status == "cancelled":
                future.set_exception(BrokenProcessPool("A Dask block was cancelled."))
            else:
                future.set_exception(_portable_error(self._distributed, remote.exception()))
        except BaseException as err:  # never leave the eval waiting
            if not future.done():
                future.set_exception(err)
        finally:
            with self._lock:
                self._futures.pop(remote, None)

    def stop(self) -> None:
        self._slots.drop_waiting()
        self._distributed.Event(self._stop_event, client=self._client).set()
        with self._lock:
            remotes = list(self._futures)
        if remotes:
            try:
                self._distributed.wait(remotes, timeout=STOP_WAIT)
            except TimeoutError:  # a block stuck in the transform: the eval fails anyway
                pass

    def close(self) -> None:
        pass

    def release(self) -> None:
        try:
            self._distributed.Event(self._stop_event, client=self._client).clear()
            self._client.cancel([self._job])
        except Exception:  # the cluster is gone: nothing left to free
            pass


def _portable_error(distributed: Any, error: BaseException | None) -> BaseException:
    """A worker lost too many times is a ``BrokenProcessPool``, as a dead process
    worker is; an exception raised in the task is itself."""
    if error is None:
        return BrokenProcessPool("A Dask block ended without a result.")
    if isinstance(error, distributed.KilledWorker):
        return BrokenProcessPool(f"A Dask worker was lost ({error}).")
    return error
