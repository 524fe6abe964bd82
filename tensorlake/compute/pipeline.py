"""``@tl.compute`` and ``tl.compose``: parallel, ordered, checkpointed transforms.

The caller's process is the dataset's only writer. It cuts the input into blocks of
consecutive items, has workers turn each block into chunks on the target storage, and
adopts the blocks' chunk tables in input order, so rows keep the input order whatever
the number of workers. Every ``checkpoint_interval`` items it commits; a failing item
or a dead worker resets the dataset to the last checkpoint (or to its state before the
eval) and raises ``TransformError``.
"""

from __future__ import annotations

import functools
import itertools
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from tensorlake.api.dataset import Dataset, core_of
from tensorlake.compute.schedulers import SCHEDULERS, make_scheduler
from tensorlake.compute.worker import BlockResult, Job, RemoteTraceback, Task
from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.engine.format import records
from tensorlake.engine.version import commit as versioning
from tensorlake.engine.version.gc import gc
from tensorlake.errors import DatasetError, StorageError, TransformError, VersionError

MAX_BLOCK = 1000  # items per block, at most: bounds worker memory and progress latency
MIN_TAIL_BLOCK = 16  # the smallest block the end of the input is cut into
LOG_LINE_SECONDS = 30.0  # progress lines in logs (output that is not a terminal)
MAX_STORING = 4  # checkpoints being stored at once (in order); then the next one waits


@dataclass(slots=True)
class EvalReport:
    """What an ``eval`` did."""

    items: int  # input items processed by this eval (failed ones included)
    samples: int  # rows appended
    failed_indices: list[int] = field(default_factory=list)  # with ignore_errors=True
    checkpoints: list[str] = field(default_factory=list)  # commit ids
    seconds: float = 0.0


def compute(fn: Callable[..., Any]) -> Callable[..., ComputeFunction]:
    """Make ``fn(item, sample_out, *args, **kwargs)`` a transform.

    Example::

        @tl.compute
        def load_image(path, sample_out, label):
            sample_out.append({"images": tl.read(path), "labels": label})

        load_image(label="cat").eval(paths, ds, num_workers=2, checkpoint_interval=1000)
    """

    @functools.wraps(fn)
    def bind(*args: Any, **kwargs: Any) -> ComputeFunction:
        return ComputeFunction([(fn, args, kwargs)])

    return bind


def compose(functions: Sequence[ComputeFunction]) -> ComputeFunction:
    """Chain transforms: each row one appends is an item (a dict) for the next.

    Example::

        tl.compose([decode(), augment(copies=4)]).eval(paths, ds, num_workers=2)
    """
    functions = list(functions)
    if not functions or not all(isinstance(f, ComputeFunction) for f in functions):
        raise TypeError("compose() takes a list of transforms, e.g. [f(), g(size=2)].")
    return ComputeFunction([stage for f in functions for stage in f.stages])


class ComputeFunction:
    """A transform (or a chain of them) with its arguments bound, ready to ``eval``."""

    def __init__(self, stages: list[tuple[Callable[..., Any], tuple, dict]]) -> None:
        self.stages = stages
        self.last_report: EvalReport | None = None

    @property
    def name(self) -> str:
        return "+".join(getattr(fn, "__name__", "transform") for fn, _, _ in self.stages)

    def __repr__(self) -> str:
        return f"ComputeFunction({self.name})"

    def eval(
        self,
        data_in: Any,
        ds_out: Dataset,
        num_workers: int = 0,
        scheduler: str = "processed",
        progressbar: bool = True,
        skip_ok: bool = False,
        checkpoint_interval: int = 0,
        ignore_errors: bool = False,
        resume: bool = False,
    ) -> EvalReport:
        """Run the transform on every item of ``data_in`` and append the rows to ``ds_out``.

        ``num_workers=0`` runs in this thread; otherwise ``scheduler`` is ``"processed"``
        (worker processes), ``"threaded"`` or ``"serial"``. ``checkpoint_interval=N``
        commits after every N input items (and at the end). ``ignore_errors`` skips
        failing items (see the report's ``failed_indices``). ``resume`` skips the items
        the last checkpoint of this transform already holds.
        """
        started = time.perf_counter()
        core = _check_target(ds_out)
        n, dataset_in = _check_input(data_in, scheduler, num_workers, core)
        if scheduler not in SCHEDULERS:
            raise ValueError(
                f"scheduler must be one of {SCHEDULERS}, got {scheduler!r}. (ray and dask "
                "are not available in this version.)"
            )
        if not isinstance(checkpoint_interval, int) or checkpoint_interval < 0:
            raise ValueError(
                f"checkpoint_interval must be an int >= 0, got {checkpoint_interval!r}."
            )
        run = _Run(self, core, n, checkpoint_interval)
        start = run.resume_point() if resume else 0
        core.begin_batch()
        try:
            run.prepare()
            job = Job(
                list(core.engines),
                core.url,
                core.creds,
                ignore_errors,
                skip_ok,
                _input_spec(data_in, dataset_in, scheduler, num_workers),
                core.links,
            )
            # the shown bar is made once the workers run: tqdm starts a thread
            bar: tqdm | _NoBar = _NoBar()
            lock = threading.Lock()

            def progress(k: int) -> None:
                with lock:
                    bar.update(k)

            sched, end_relay = make_scheduler(
                scheduler if num_workers > 0 else "serial",
                num_workers,
                job,
                [(_with_args(fn, args), kwargs) for fn, args, kwargs in self.stages],
                core.storage,
                data_in if dataset_in else None,
                progress,
                run.uploads.stored,
            )
            run.start()
            bar = _progress_bar(progressbar, n, start, self.name)
            try:
                tasks = _tasks(
                    data_in, dataset_in, start, n, num_workers, checkpoint_interval, core
                )
                run.drive(sched, tasks, max(1, 2 * num_workers), bar)
            except BaseException as err:
                sched.stop()
                if not isinstance(err, TransformError):  # interrupted, storage down ...
                    run.restore(quiet=True)
                raise
            else:
                sched.close()
            finally:
                end_relay()
                bar.close()
            run.finish()
        finally:
            run.close()
            core.end_batch(flush=False)
        report = run.report
        report.seconds = time.perf_counter() - started
        self.last_report = report
        if report.failed_indices:
            shown = ", ".join(map(str, report.failed_indices[:20]))
            more = ", ..." if len(report.failed_indices) > 20 else ""
            warnings.warn(
                f"{len(report.failed_indices)} of {report.items} input items failed and were "
                f"skipped (indices {shown}{more}); the returned report's failed_indices lists "
                "them all.",
                stacklevel=2,
            )
        return report


def _with_args(fn: Callable[..., Any], args: tuple) -> Callable[..., Any]:
    if not args:
        return fn

    def call(item: Any, sample_out: Any, **kwargs: Any) -> Any:
        return fn(item, sample_out, *args, **kwargs)

    return call


# -- checks ------------------------------------------------------------------------------


def _check_target(ds_out: Any) -> DatasetCore:
    if not isinstance(ds_out, Dataset):
        raise TypeError(f"ds_out must be a tensorlake Dataset, got {type(ds_out).__name__}.")
    if ds_out.is_view or ds_out.group_index:
        raise DatasetError("ds_out must be a whole dataset, not a view or a group.")
    core = core_of(ds_out)
    core.check_writable()
    if not core.engines:
        raise DatasetError(
            "ds_out has no tensors: create them (ds.create_tensor(...)) before eval()."
        )
    return core


def _check_input(
    data_in: Any, scheduler: str, num_workers: int, core: DatasetCore
) -> tuple[int, bool]:
    """The input's length and whether it is a tensorlake dataset."""
    dataset_in = isinstance(data_in, Dataset)
    if isinstance(data_in, (str, bytes)) or not hasattr(data_in, "__len__"):
        raise TypeError(
            "data_in must be a sized iterable (a list, range, numpy array or tensorlake "
            f"dataset), got {type(data_in).__name__}. Wrap a generator in list()."
        )
    if dataset_in and core_of(data_in) is core:
        raise DatasetError("data_in and ds_out are the same dataset; write to another one.")
    if (
        dataset_in
        and scheduler == "processed"
        and num_workers > 0
        and not core_of(data_in).storage.shared_across_processes
    ):
        raise DatasetError(
            "A mem:// input dataset cannot be read by worker processes; use "
            "scheduler='threaded' or store the input locally."
        )
    return len(data_in), dataset_in


def _input_spec(
    data_in: Any, dataset_in: bool, scheduler: str, num_workers: int
) -> tuple[str, dict | None, str] | None:
    if not dataset_in or scheduler != "processed" or num_workers <= 0:
        return None
    if data_in.is_view:
        raise DatasetError(
            "A view as data_in works with scheduler='threaded' or 'serial'; with processes, "
            "pass the whole dataset or copy the view first."
        )
    core = core_of(data_in)
    return core.url, core.creds, core.commit_id


def _progress_bar(enabled: bool, total: int, initial: int, name: str) -> tqdm | _NoBar:
    """A live bar in notebooks and terminals; in logs (where tqdm's ``\\r`` updates would
    pile up) a plain line every ``LOG_LINE_SECONDS`` and one at the end. A tqdm object,
    even a disabled one, starts a monitor thread that outlives it, and a process with a
    thread cannot fork its next eval's workers: no tqdm object unless the bar is shown."""
    if not enabled:
        return _NoBar()
    if "ipykernel" in sys.modules or _is_terminal(sys.stderr):
        return tqdm(total=total, initial=initial, desc=name, unit="item", dynamic_ncols=True)
    return _LogLines(total, initial, name)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no stream, or a closed one
        return False


class _NoBar:
    """The progress bar's interface, showing nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


class _LogLines(_NoBar):
    """Progress as whole lines on stderr, for logs: the bar's text without redraws."""

    def __init__(self, total: int, initial: int, name: str) -> None:
        self.total, self.n, self.initial, self.name = total, initial, initial, name
        self.postfix = ""
        self.started = self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self.last >= LOG_LINE_SECONDS:
            self._line()

    def set_postfix(self, **kwargs: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in kwargs.items() if k != "refresh")

    def close(self) -> None:
        self._line()

    def _line(self) -> None:
        self.last = time.monotonic()
        elapsed = self.last - self.started
        rate = (self.n - self.initial) / elapsed if elapsed > 0 else None
        text = tqdm.format_meter(
            self.n,
            self.total,
            elapsed,
            prefix=self.name,
            unit="item",
            rate=rate,
            postfix=self.postfix or None,
            ncols=0,
        )
        print(text, file=sys.stderr, flush=True)


# -- blocks ------------------------------------------------------------------------------


def _tasks(
    data_in: Any,
    dataset_in: bool,
    start: int,
    n: int,
    num_workers: int,
    checkpoint_interval: int,
    core: DatasetCore,
) -> Iterator[Task]:
    """Blocks of consecutive items from ``start``; none straddles a checkpoint.

    With several workers the blocks shrink towards the end of the input, so that the
    workers finish together instead of one running a whole block alone.
    """
    size = max(1, min(MAX_BLOCK, -(-(n - start) // max(1, 4 * num_workers))))
    items = None if dataset_in else iter(data_in)
    if items is not None and start:
        items = itertools.islice(items, start, None)
    index = start
    while index < n:
        if num_workers > 1:
            size = min(size, max(MIN_TAIL_BLOCK, -(-(n - index) // (2 * num_workers))))
        stop = min(n, index + size)
        if checkpoint_interval:
            stop = min(stop, (index // checkpoint_interval + 1) * checkpoint_interval)
        count = stop - index
        block = None if items is None else list(itertools.islice(items, count))
        if block is not None and len(block) < count:
            raise TransformError(
                f"data_in yielded {index + len(block)} items but its len() is {n}."
            )
        metas = {name: e.meta.to_dict() for name, e in core.engines.items()}
        yield Task(index, block, count, metas)
        index = stop


def _submit(sched: Any, task: Task) -> Future:
    try:
        return sched.submit(task)
    except BrokenProcessPool as err:  # a worker died since the last result came
        future: Future = Future()
        future.set_exception(err)
        return future


class _Uploads:
    """Which blocks worker processes have finished storing (they report it through the
    progress pipe after the block's result): a commit naming a block's chunks waits for
    it, on the thread that stores the commit."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._done: dict[int, str | None] = {}  # block start -> None, or why it failed
        self._aborted = False

    def stored(self, start: int, error: str | None) -> None:
        with self._cond:
            self._done[start] = error
            self._cond.notify_all()

    def abort(self) -> None:
        """Waits end at once (with an error): the eval is failing."""
        with self._cond:
            self._aborted = True
            self._cond.notify_all()

    def wait(self, blocks: Sequence[int]) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._aborted or all(b in self._done for b in blocks))
            for block in blocks:
                if block not in self._done:
                    raise StorageError("The eval stopped before a worker stored its chunks.")
                if self._done[block] is not None:
                    raise StorageError(
                        f"A worker could not store the chunks of the block starting at input "
                        f"item {block}: {self._done[block]}"
                    )


class _Run:
    """The writer's side of one eval: adopt blocks in order, checkpoint, recover."""

    def __init__(self, fn: ComputeFunction, core: DatasetCore, n: int, interval: int) -> None:
        self.fn, self.core, self.n, self.interval = fn, core, n, interval
        self.report = EvalReport(0, 0)
        self.checkpoint_items = 0  # input items the last stored checkpoint holds
        self.initial: versioning.PreparedCommit | None = None  # see prepare()
        # commits being stored, in order: (future, items it holds, its id if a checkpoint)
        self.storing: deque[tuple[Future, int, str | None]] = deque()
        self._storer: ThreadPoolExecutor | None = None
        self.uploads = _Uploads()
        self.uploading: list[int] = []  # adopted blocks whose chunks workers still store

    def resume_point(self) -> int:
        core = self.core
        if versioning.has_head_changes(core):
            raise VersionError(
                "resume=True continues from the last checkpoint, but the dataset has "
                "changes since it. Call ds.reset() first (or commit them)."
            )
        extra = records.read_commit(core.storage, core.commit_id).commit.extra
        if extra.get("compute") != self.fn.name:
            return 0
        done = int(extra.get("samples_processed", 0))
        self.checkpoint_items = done
        return min(done, self.n)

    def prepare(self) -> None:
        """Fix the state the eval starts from: the point a failure returns to. With
        checkpoints, changes since the last commit are committed; ``start`` stores that
        commit while the workers begin."""
        core = self.core
        core.flush()  # stored first: if the commit cannot be, a failure returns here
        if self.interval and versioning.has_head_changes(core):
            self.initial = versioning.prepare_commit(
                core, f"Auto-commit before compute of {self.fn.name}"
            )
        core.writer.close()  # its threads end: worker processes can then be forked

    def start(self) -> None:
        """The workers run (forked already): store the initial commit behind them."""
        if self.initial is not None:
            self._store(self.initial, self.checkpoint_items, None)
            self.initial = None

    def drive(self, sched: Any, tasks: Iterator[Task], in_flight: int, bar: tqdm | _NoBar) -> None:
        pending: deque[tuple[Task, Future]] = deque()
        for task in itertools.islice(tasks, in_flight):
            pending.append((task, _submit(sched, task)))
        while pending:
            task, future = pending.popleft()
            try:
                result = future.result()
            except BrokenProcessPool:
                self.uploads.abort()  # a dead worker's blocks will never be stored
                self.settle(quiet=True)
                last = pending[-1][0] if pending else task
                self.fail(
                    TransformError(
                        "A worker process died (killed, out of memory or crashed) while "
                        f"processing items {task.start} to {last.start + last.count - 1} of "
                        f"the input data. {self.checkpoint_text()} You can slice the input "
                        "to resume from this point.",
                        samples_processed=self.checkpoint_items,
                    ),
                    sched,
                )
            checkpoint_due = self.adopt(result, sched, bar)
            for task in itertools.islice(tasks, 1):  # before committing: workers keep busy
                pending.append((task, _submit(sched, task)))
            if checkpoint_due:
                self.checkpoint(result.start + result.count)

    def adopt(self, result: BlockResult, sched: Any, bar: tqdm | _NoBar) -> bool:
        """Append a finished block's rows; True when a checkpoint is due after it."""
        if result.failure is not None:
            self.settle(quiet=True)
            f = result.failure
            error = TransformError(
                f"Transform failed at index {f.index} of the input data on the item: "
                f"{f.item_repr}. {self.checkpoint_text()} You can slice the input to "
                "resume from this point.",
                index=f.index,
                item=f.item_repr,
                samples_processed=self.checkpoint_items,
            )
            cause = f.error
            if cause.__cause__ is None:
                cause.__cause__ = RemoteTraceback(f.traceback)
            self.fail(error, sched, cause)
        assert result.descriptor is not None
        self.core.adopt_block(result.descriptor)
        if result.uploading:
            self.uploading.append(result.start)
        self.report.items += result.count
        self.report.samples += result.descriptor.rows
        self.report.failed_indices += result.failed
        bar.set_postfix(samples=self.report.samples, refresh=False)
        done = result.start + result.count
        return bool(self.interval) and (done % self.interval == 0 or done == self.n)

    def checkpoint(self, done: int) -> None:
        """Commit the rows of the first ``done`` items.

        The commit is made in memory here and stored by a background thread while the
        workers go on, so a slow disk or a remote store does not stall them. It counts
        (in errors, for ``resume``) once it is stored; a crash before that leaves the
        previous checkpoint, which ``reset`` restores.
        """
        self.settle(keep=MAX_STORING - 1)
        pct = 100.0 * done / self.n if self.n else 100.0
        extra = {"samples_processed": done, "compute": self.fn.name}
        # the workers' uploads of the blocks adopted since the last checkpoint (that one
        # waited for those before)
        blocks, self.uploading = self.uploading, []
        prepared = versioning.prepare_commit(
            self.core,
            f"Auto-commit during compute of {self.fn.name} after {pct:.1f}% progress",
            allow_empty=True,
            extra=extra,
            also_wait=lambda: self.uploads.wait(blocks),
        )
        self._store(prepared, done, prepared.id)

    def _store(
        self, prepared: versioning.PreparedCommit, done: int, checkpoint: str | None
    ) -> None:
        if self._storer is None:
            self._storer = ThreadPoolExecutor(1, thread_name_prefix="tl-checkpoint")
        previous = self.storing[-1][0] if self.storing else None

        def store() -> None:
            if previous is not None:  # one thread: it is done; never store past a failure
                previous.result()
            prepared.store()

        self.storing.append((self._storer.submit(store), done, checkpoint))

    def settle(self, keep: int = 0, quiet: bool = False) -> bool:
        """Count the commits stored so far, waiting until at most ``keep`` are still being
        stored. If one failed: raise its error, or with ``quiet`` return False (the last
        checkpoint stored stays the last one)."""
        while len(self.storing) > keep or (self.storing and self.storing[0][0].done()):
            future, done, checkpoint = self.storing.popleft()
            try:
                future.result()
            except Exception:
                wait([f for f, _, _ in self.storing])  # the later ones fail at once
                self.storing.clear()
                if quiet:
                    return False
                raise
            if checkpoint is not None:
                self.report.checkpoints.append(checkpoint)
            self.checkpoint_items = done
        return True

    def close(self) -> None:
        """Leave nothing half stored (this matters only on the way out of an error): a
        commit not stored yet is stored, and if that fails the dataset goes back to the
        state storage holds."""
        try:
            self.start()  # if the workers never started, the initial commit is not stored
            if not self.settle(quiet=True):
                self.restore(quiet=True)
        finally:
            if self._storer is not None:
                self._storer.shutdown(wait=True)

    def checkpoint_text(self) -> str:
        return f"Last checkpoint: {self.checkpoint_items} samples processed."

    def fail(self, error: TransformError, sched: Any, cause: BaseException | None = None) -> None:
        """Stop the workers, return the dataset to the last stored state, raise."""
        sched.stop()
        self.restore()
        raise error from cause

    def restore(self, quiet: bool = False) -> None:
        """Back to the last checkpoint (or the start): nothing was stored since, so
        reload that state, then delete the chunks the workers wrote."""
        core = self.core
        self.uploads.abort()  # the workers are stopped: what they did not store, never is
        self.settle(quiet=True)  # before reloading: the stored head must not move after
        try:
            try:
                core.writer.wait()
            finally:
                core.open_branch(core.branch)
            gc(core)
        except Exception:
            if not quiet:
                raise

    def finish(self) -> None:
        try:
            self.settle()
            done_now = self.report.checkpoints and self.checkpoint_items == self.n
            if self.interval and self.report.items and not done_now:
                self.checkpoint(self.n)
                self.settle()
            self.uploads.wait(self.uploading)  # without checkpoints: before the manifest
        except BaseException:
            self.restore(quiet=True)  # a checkpoint was not stored: back to the last one
            raise
        self.core.flush()
