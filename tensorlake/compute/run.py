"""``Run``: the writer's side of one eval (adopt in order, checkpoint, settle, restore).

The caller's process is the dataset's only writer. It adopts the blocks' chunk tables
in input order, so rows keep the input order whatever the number of workers. Every
``checkpoint_interval`` items it commits, in memory, and a background thread stores the
commit while the workers go on; a failing item, a dead worker or a commit that cannot
be stored resets the dataset to the last checkpoint stored (or to its state before the
eval) and raises.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from tensorlake.compute.progress import ProgressBar
from tensorlake.compute.report import EvalReport
from tensorlake.compute.schedulers.base import Scheduler
from tensorlake.compute.uploads import Uploads
from tensorlake.compute.worker import BlockResult, RemoteTraceback, Task
from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.engine.format import records
from tensorlake.engine.version import commit as version_commit
from tensorlake.engine.version.gc import gc
from tensorlake.errors import TransformError, VersionError

__all__ = ["MAX_STORING", "Run"]

MAX_STORING = 4  # checkpoints being stored at once (in order); then the next one waits


class Run:
    """The writer's side of one eval: adopt blocks in order, checkpoint, recover."""

    def __init__(self, name: str, core: DatasetCore, n: int, interval: int) -> None:
        self.name, self.core, self.n, self.interval = name, core, n, interval
        self.report = EvalReport(0, 0)
        self.checkpoint_items = 0  # input items the last stored checkpoint holds
        self.initial: version_commit.PreparedCommit | None = None  # see prepare()
        # commits being stored, in order: (future, items it holds, its id if a checkpoint)
        self.storing: deque[tuple[Future, int, str | None]] = deque()
        self._storer: ThreadPoolExecutor | None = None
        self.uploads = Uploads()
        self.uploading: list[int] = []  # adopted blocks whose chunks workers still store

    def resume_point(self) -> int:
        """Where ``resume=True`` starts: the items the head checkpoint of this transform
        holds (0 if the head is not one of its checkpoints)."""
        core = self.core
        if version_commit.has_head_changes(core):
            raise VersionError(
                "resume=True continues from the last checkpoint, but the dataset has "
                "changes since it. Call ds.reset() first (or commit them)."
            )
        commit = records.read_commit(core.storage, core.commit_id).commit
        assert commit is not None  # read_commit reads a commit
        extra = commit.extra
        if extra.get("compute") != self.name:
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
        if self.interval and version_commit.has_head_changes(core):
            self.initial = version_commit.prepare_commit(
                core, f"Auto-commit before compute of {self.name}"
            )
        core.writer.close()  # its threads end: worker processes can then be forked

    def start(self) -> None:
        """The workers run (forked already): store the initial commit behind them."""
        if self.initial is not None:
            self._store(self.initial, self.checkpoint_items, None)
            self.initial = None

    def drive(
        self, sched: Scheduler, tasks: Iterator[Task], in_flight: int, bar: ProgressBar
    ) -> None:
        """Submit ``in_flight`` blocks ahead and adopt their results in input order,
        checkpointing when one is due; stop the workers and restore on a failure."""
        pending: deque[tuple[Task, Future]] = deque()
        for task in itertools.islice(tasks, in_flight):
            pending.append((task, _submit(sched, task)))
        while pending:
            task, future = pending.popleft()
            try:
                result = future.result()
            except BrokenProcessPool:
                last = pending[-1][0] if pending else task
                self.worker_died(
                    sched, f"while processing items {task.start} to "
                    f"{last.start + last.count - 1} of the input data"
                )  # fmt: skip
            checkpoint_due = self.adopt(result, sched, bar)
            for task in itertools.islice(tasks, 1):  # before committing: workers keep busy
                pending.append((task, _submit(sched, task)))
            if checkpoint_due:
                self.checkpoint(result.start + result.count)

    def close_workers(self, sched: Scheduler) -> None:
        """Every block is adopted: the workers end, once they have stored their chunks."""
        try:
            sched.close()
        except BrokenProcessPool:
            self.worker_died(sched, "before it had stored the chunks of its last items")

    def worker_died(self, sched: Scheduler, when: str) -> None:
        """A worker process is gone: back to the last checkpoint, and say so."""
        self.uploads.abort()  # a dead worker's blocks will never be stored
        self.settle(quiet=True)
        self.fail(
            TransformError(
                f"A worker process died (killed, out of memory or crashed) {when}. "
                f"{self.checkpoint_text()} You can slice the input to resume from this "
                "point.",
                samples_processed=self.checkpoint_items,
            ),
            sched,
        )

    def adopt(self, result: BlockResult, sched: Scheduler, bar: ProgressBar) -> bool:
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
        extra = {"samples_processed": done, "compute": self.name}
        # the workers' uploads of the blocks adopted since the last checkpoint (that one
        # waited for those before)
        blocks, self.uploading = self.uploading, []
        prepared = version_commit.prepare_commit(
            self.core,
            f"Auto-commit during compute of {self.name} after {pct:.1f}% progress",
            allow_empty=True,
            extra=extra,
            also_wait=lambda: self.uploads.wait(blocks),
        )
        self._store(prepared, done, prepared.id)

    def _store(
        self, prepared: version_commit.PreparedCommit, done: int, checkpoint: str | None
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

    def fail(
        self, error: TransformError, sched: Scheduler, cause: BaseException | None = None
    ) -> None:
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
        """Every block is adopted: store the last checkpoint (or, without checkpoints,
        wait for the workers' uploads) and flush."""
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


def _submit(sched: Scheduler, task: Task) -> Future[BlockResult]:
    """``sched.submit(task)``; a pool that broke since the last result (a worker died)
    is a future with that error, as if the block's worker had died."""
    try:
        return sched.submit(task)
    except BrokenProcessPool as err:  # a worker died since the last result came
        future: Future[BlockResult] = Future()
        future.set_exception(err)
        return future
