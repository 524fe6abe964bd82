"""Running blocks on a cluster's workers (Ray, Dask): what travels, what a worker keeps.

A cluster worker may be on another machine and may run blocks of several evals at
once. Each eval's job travels once, as a ``ClusterJob`` (the job, its stages as
cloudpickle bytes so that closures and functions from ``__main__`` or a notebook work,
and a token naming the eval); a worker keeps what it opens for an eval (the target
storage, the input dataset, the unpickled stages) for that eval's next blocks.

A block's chunks are stored before its result is returned. An engine that loses a
worker runs the block again, and only the result that comes back is adopted: the rows
of a lost attempt are never referenced (its chunks are garbage that ``gc`` removes), so
a retry can neither duplicate nor lose a row. A ``mem://`` target (a cluster on this
machine only) gets the chunk bytes back in the result, as process workers do.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from typing import Any

import cloudpickle

from tensorlake import config
from tensorlake.api.factory import load
from tensorlake.compute.padding import PaddedInput
from tensorlake.compute.worker import BlockResult, Job, Stage, Task, run_block
from tensorlake.storage import MemoryStorage, Storage, from_url

__all__ = [
    "ClusterJob",
    "Slots",
    "Throttled",
    "cluster_job",
    "dump_stages",
    "keep_freed_memory",
    "open_input",
    "open_target",
    "run_cluster_block",
]


@dataclasses.dataclass(frozen=True, slots=True)
class ClusterJob:
    """One eval's job as it travels to cluster workers (once per worker)."""

    token: str  # names the eval: a worker keeps what it opened for it under this
    job: Job  # ``job.stages`` holds the pipeline as cloudpickle bytes


def dump_stages(stages: list[Stage]) -> bytes:
    """The pipeline as cloudpickle bytes; a ``TypeError`` saying what to do when a
    transform or one of its arguments cannot be pickled (before any work starts)."""
    try:
        return cloudpickle.dumps(stages)
    except Exception as err:
        raise TypeError(
            f"The transform or its arguments cannot be sent to worker processes ({err}). "
            "Use scheduler='threaded', or pass picklable arguments."
        ) from err


def cluster_job(job: Job, stages: list[Stage]) -> ClusterJob:
    """What every block of the eval needs on a worker. The environment does not travel:
    workers resolve managed credentials from their own."""
    return ClusterJob(secrets.token_hex(8), dataclasses.replace(job, stages=dump_stages(stages)))


def open_target(job: Job) -> Storage | None:
    """The eval's target storage, opened by a worker; None for a ``mem://`` target,
    which a worker cannot reach (its chunk bytes go back in the result)."""
    if job.target_url.startswith("mem://"):
        return None
    storage = from_url(job.target_url, creds=job.target_creds)
    # nobody reads the chunks soon: big ones may skip the page cache
    storage.set_direct_write_min(config.direct_write_min_bytes())
    return storage


def keep_freed_memory() -> None:
    """Have glibc keep freed buffers for reuse instead of returning them to the system.

    By default a freed buffer above a few MB (a chunk, a decoded mask) is unmapped, and
    the next one faults in fresh pages (about 2.5 us each here): 50 faults an item on
    the COCO workflow, which this cuts to 8. A worker's heap then stays at its peak.
    Elsewhere than glibc, nothing changes.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # glibc's maximum
    mallopt(_M_TRIM_THRESHOLD, 256 << 20)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def open_input(job: Job) -> Any:
    """The eval's input dataset, opened by a worker (None when the input is items)."""
    if job.input_dataset is None:
        return None
    url, creds, commit_id, pad = job.input_dataset
    rows = load(url, read_only=True, creds=creds, version=commit_id)
    return PaddedInput(rows) if pad else rows


@dataclasses.dataclass(slots=True)
class _Opened:
    stages: list[Stage]
    storage: Storage | None
    input: Any


_opened: OrderedDict[str, _Opened] = OrderedDict()  # token -> what this worker opened
_opened_lock = threading.Lock()
_KEEP = 4  # evals whose opened state a worker keeps (an eval that ended leaves its own)


def _opened_for(cjob: ClusterJob) -> _Opened:
    with _opened_lock:  # a worker may run blocks on several threads
        opened = _opened.get(cjob.token)
        if opened is None:
            if not _opened:  # this process's first eval
                keep_freed_memory()
            assert cjob.job.stages is not None
            opened = _Opened(
                cloudpickle.loads(cjob.job.stages), open_target(cjob.job), open_input(cjob.job)
            )
            _opened[cjob.token] = opened
            while len(_opened) > _KEEP:
                _opened.popitem(last=False)
        _opened.move_to_end(cjob.token)
        return opened


def run_cluster_block(
    cjob: ClusterJob, task: Task, should_stop: Callable[[], bool] | None = None
) -> BlockResult:
    """Run one block on this worker; its chunks are stored when this returns."""
    opened = _opened_for(cjob)
    ship = opened.storage is None
    storage = (
        MemoryStorage(f"tl-cluster-{os.getpid()}-{secrets.token_hex(4)}")
        if ship
        else opened.storage
    )
    assert storage is not None
    try:
        return run_block(
            cjob.job,
            opened.stages,
            task,
            storage,
            opened.input,
            _no_progress,
            should_stop or _never,
            ship=ship,
        )
    finally:
        if ship:
            MemoryStorage.drop(storage.url.removeprefix("mem://"))


def _no_progress(n: int) -> None:
    """Items done are counted by the driver as blocks come back."""


def _never() -> bool:
    return False


class Throttled:
    """``check()`` at most every ``interval`` seconds, the last answer in between: a
    block asks after every item whether to stop, and asking a cluster costs a round
    trip."""

    def __init__(self, check: Callable[[], bool], interval: float = 0.25) -> None:
        self._check, self._interval = check, interval
        self._next, self._answer = 0.0, False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self._answer and now >= self._next:
            self._next = now + self._interval
            self._answer = bool(self._check())
        return self._answer


class Slots:
    """At most ``limit`` blocks running on the cluster at once (``num_workers`` means
    the same on a cluster of any size as it does for processes); the eval keeps more
    submitted, which wait here and start as running ones end.

    ``start(task, future)`` sends a block to the cluster, which calls ``ended()`` once
    it has, whatever its outcome."""

    def __init__(self, limit: int, start: Callable[[Task, Future[BlockResult]], None]) -> None:
        self._limit, self._start = max(1, limit), start
        self._running = 0
        self._waiting: deque[tuple[Task, Future[BlockResult]]] = deque()
        self._lock = threading.Lock()

    def submit(self, task: Task) -> Future[BlockResult]:
        future: Future[BlockResult] = Future()
        with self._lock:
            if self._running >= self._limit:
                self._waiting.append((task, future))
                return future
            self._running += 1
        self._start(task, future)
        return future

    def ended(self) -> None:
        with self._lock:
            if not self._waiting:
                self._running -= 1
                return
            task, future = self._waiting.popleft()
        self._start(task, future)

    def drop_waiting(self) -> None:
        """The eval stopped: blocks not started never will."""
        with self._lock:
            waiting, self._waiting = list(self._waiting), deque()
        for _, future in waiting:
            future.set_exception(CancelledError())
