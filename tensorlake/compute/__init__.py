"""Parallel, ordered, checkpointed transforms: ``@tl.compute`` and ``tl.compose``.

The modules, one job each: ``transform`` (the public API and the eval's orchestration),
``checks`` (its arguments), ``blocks`` (cutting the input), ``schedulers`` (where blocks
run: the ``Scheduler`` protocol, its registry, serial/threaded/processed), ``worker``
(running a block anywhere), ``process_worker`` (what only a worker process does),
``run`` (the writer's side: adopt, checkpoint, recover), ``uploads`` (chunks that
workers still store), ``progress`` (the bar), ``report`` (``EvalReport``) and
``sample_out``.
"""

from tensorlake.compute.report import EvalReport
from tensorlake.compute.sample_out import SampleOut
from tensorlake.compute.schedulers import (
    Scheduler,
    SchedulerContext,
    register_scheduler,
    scheduler_names,
)
from tensorlake.compute.transform import ComputeFunction, compose, compute

__all__ = [
    "ComputeFunction",
    "EvalReport",
    "SampleOut",
    "Scheduler",
    "SchedulerContext",
    "compose",
    "compute",
    "register_scheduler",
    "scheduler_names",
]
