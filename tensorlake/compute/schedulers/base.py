"""``Scheduler``: where the blocks of one eval run; ``SchedulerContext``: what it is made of.

The eval loop knows a scheduler only through this protocol, so a new one (Ray, Dask)
is a module that registers a factory (``register_scheduler``), with no edit to the
loop. The loop calls, in this order:

- ``submit(task)`` for each block, a few blocks ahead of the one it adopts: a
  ``Future`` of the block's ``BlockResult``. A worker that died is
  ``concurrent.futures.process.BrokenProcessPool``, from the future or from ``submit``
  (the eval then names the items in flight); any other exception fails the eval as it
  is.
- then ``close()`` once every result has been adopted, or ``stop()`` when the eval
  fails: abandon what is running at once, and make sure nothing submitted writes
  after it returns (the writer deletes what the blocks wrote).
- then ``release()``, always, last: end what outlives the workers (a progress relay,
  pipes).

Progress and stored chunks travel back through the context's callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from tensorlake.compute.worker import BlockResult, Job, Stage, Task, run_block
from tensorlake.storage import Storage

__all__ = ["Scheduler", "SchedulerContext", "SchedulerFactory"]


class Scheduler(Protocol):
    """Runs the blocks of one eval (see the module's docstring for the order of calls)."""

    def submit(self, task: Task) -> Future[BlockResult]:
        """Start the block ``task``; its result (or error) comes in the future."""
        ...

    def stop(self) -> None:
        """Abandon the blocks submitted, at once: none writes after this returns."""
        ...

    def close(self) -> None:
        """Every result is in: end the workers (they finish storing what they wrote).
        ``BrokenProcessPool`` if one died first: what it still stored may be lost."""
        ...

    def release(self) -> None:
        """Called last, after ``close`` or ``stop``: free what stays (a progress relay)."""
        ...


def _never() -> bool:
    return False


@dataclass(frozen=True, slots=True)
class SchedulerContext:
    """Everything a scheduler of one eval is made from.

    ``progress(n)`` counts ``n`` more items done (from any thread); ``stored(start,
    error)`` says that a worker has stored (``error`` None) or failed to store the chunks
    of the block starting at input item ``start``, which its result said were still
    uploading (``BlockResult.uploading``).
    """

    num_workers: int
    job: Job
    stages: list[Stage]
    storage: Storage  # the target's, as the writer opened it
    input_dataset: Any  # the input Dataset when data_in is one, else None
    progress: Callable[[int], None]
    stored: Callable[[int, str | None], None]
    client: Any = None  # eval(client=...): the cluster's client, for schedulers that take one

    def run(self, task: Task, should_stop: Callable[[], bool] = _never) -> BlockResult:
        """Run the block ``task`` in this process, on the writer's storage (what the
        serial and threaded schedulers do); ``should_stop`` ends it early."""
        return run_block(
            self.job,
            self.stages,
            task,
            self.storage,
            self.input_dataset,
            self.progress,
            should_stop,
        )


SchedulerFactory = Callable[[SchedulerContext], Scheduler]
"""Makes an eval's scheduler (a ``Scheduler`` class itself will do)."""
