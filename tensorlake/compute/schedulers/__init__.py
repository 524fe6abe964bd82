"""Where the blocks of an eval run: the ``Scheduler`` protocol, its registry, the built-ins.

``serial`` (the caller's thread), ``threaded`` and ``processed`` (worker processes) are
registered by ``registry``; ``register_scheduler`` adds others.
"""

from tensorlake.compute.schedulers.base import Scheduler, SchedulerContext, SchedulerFactory
from tensorlake.compute.schedulers.processed import ProcessScheduler
from tensorlake.compute.schedulers.registry import (
    make_scheduler,
    register_scheduler,
    scheduler_factory,
    scheduler_names,
)
from tensorlake.compute.schedulers.serial import SerialScheduler
from tensorlake.compute.schedulers.threaded import ThreadedScheduler

__all__ = [
    "ProcessScheduler",
    "Scheduler",
    "SchedulerContext",
    "SchedulerFactory",
    "SerialScheduler",
    "ThreadedScheduler",
    "make_scheduler",
    "register_scheduler",
    "scheduler_factory",
    "scheduler_names",
]
