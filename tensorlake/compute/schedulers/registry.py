"""The scheduler registry: ``eval(scheduler=name)`` -> the factory that makes it.

The built-in schedulers (serial, threaded, processed, ray, dask) are registered here;
another one (a cluster's own) is a module that calls ``register_scheduler``, with no
edit to the eval loop. The ray and dask modules import their engine only when an eval
makes their scheduler.
"""

from __future__ import annotations

import threading

from tensorlake.compute.schedulers.base import Scheduler, SchedulerContext, SchedulerFactory
from tensorlake.compute.schedulers.dask_scheduler import DaskScheduler
from tensorlake.compute.schedulers.processed import ProcessScheduler
from tensorlake.compute.schedulers.ray_scheduler import RayScheduler
from tensorlake.compute.schedulers.serial import SerialScheduler
from tensorlake.compute.schedulers.threaded import ThreadedScheduler

__all__ = [
    "make_scheduler",
    "register_scheduler",
    "runs_in_other_processes",
    "scheduler_factory",
    "scheduler_names",
]

_factories: dict[str, SchedulerFactory] = {
    "serial": SerialScheduler,
    "threaded": ThreadedScheduler,
    "processed": ProcessScheduler,
    "ray": RayScheduler,
    "dask": DaskScheduler,
}
# their blocks cannot see this process's memory
_in_other_processes = {"processed", "ray", "dask"}
_register_lock = threading.Lock()


def register_scheduler(
    name: str, factory: SchedulerFactory, *, other_processes: bool = False
) -> None:
    """Make ``eval(..., scheduler=name)`` run its blocks on ``factory(context)``.

    ``factory`` takes a ``SchedulerContext`` and returns a ``Scheduler`` (a class with
    that constructor will do). ``other_processes``: its blocks run in other processes or
    machines (they then open an input dataset themselves, which must be a whole dataset on
    storage they can reach). Registering a name again replaces its factory, built-in ones
    included. With ``num_workers=0`` an eval runs serially whatever the name.

    Example::

        from concurrent.futures import Future

        class Inline:
            def __init__(self, context):
                self.context = context

            def submit(self, task):
                future = Future()
                future.set_result(self.context.run(task))
                return future

            def stop(self): ...
            def close(self): ...
            def release(self): ...

        register_scheduler("inline", Inline)
        transform().eval(items, ds, num_workers=1, scheduler="inline")
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"A scheduler's name must be a non-empty str, got {name!r}.")
    if not callable(factory):
        raise TypeError(
            f"The factory of scheduler {name!r} must be callable (context -> Scheduler), "
            f"got {type(factory).__name__}."
        )
    with _register_lock:
        _factories[name] = factory
        if other_processes:
            _in_other_processes.add(name)
        else:
            _in_other_processes.discard(name)


def runs_in_other_processes(name: str) -> bool:
    """Whether the blocks of scheduler ``name`` run outside this process."""
    return name in _in_other_processes


def scheduler_names() -> tuple[str, ...]:
    """The names ``eval`` accepts as ``scheduler``, built-in ones first."""
    return tuple(_factories)


def scheduler_factory(name: str) -> SchedulerFactory:
    """The factory registered as ``name``; ``ValueError`` naming the registered ones if
    there is none."""
    factory = _factories.get(name) if isinstance(name, str) else None
    if factory is None:
        raise ValueError(f"scheduler must be one of {scheduler_names()}, got {name!r}.")
    return factory


def make_scheduler(name: str, context: SchedulerContext) -> Scheduler:
    """The scheduler ``name`` for one eval (``"serial"`` when ``num_workers <= 0``)."""
    return scheduler_factory("serial" if context.num_workers <= 0 else name)(context)
