"""The ``"serial"`` scheduler: each block runs when it is submitted, in the caller's thread.

``num_workers=0`` means this one whatever the scheduler named.
"""

from __future__ import annotations

from concurrent.futures import Future

from tensorlake.compute.schedulers.base import SchedulerContext
from tensorlake.compute.worker import BlockResult, Task

__all__ = ["SerialScheduler"]


class SerialScheduler:
    """Runs each block in ``submit``, so its future is done when it is returned."""

    def __init__(self, context: SchedulerContext) -> None:
        self._context = context

    def submit(self, task: Task) -> Future[BlockResult]:
        future: Future[BlockResult] = Future()
        try:
            future.set_result(self._context.run(task))
        except BaseException as err:
            future.set_exception(err)
        return future

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass

    def release(self) -> None:
        pass
