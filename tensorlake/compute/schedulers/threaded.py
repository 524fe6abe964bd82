"""The ``"threaded"`` scheduler: blocks on a pool of threads of the caller's process.

Threads share the writer's storage and the input dataset as they are (a view or a
``mem://`` dataset works); they suit transforms that wait on I/O or release the GIL.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from tensorlake.compute.schedulers.base import SchedulerContext
from tensorlake.compute.worker import BlockResult, Task

__all__ = ["ThreadedScheduler"]


class ThreadedScheduler:
    """``num_workers`` threads; ``stop`` has their blocks end at the next item."""

    def __init__(self, context: SchedulerContext) -> None:
        self._context = context
        self._stop_flag = threading.Event()
        self._executor = ThreadPoolExecutor(context.num_workers, thread_name_prefix="tl-compute")

    def submit(self, task: Task) -> Future[BlockResult]:
        return self._executor.submit(self._run, task)

    def _run(self, task: Task) -> BlockResult:
        return self._context.run(task, self._stop_flag.is_set)

    def stop(self) -> None:
        self._stop_flag.set()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def release(self) -> None:
        pass
