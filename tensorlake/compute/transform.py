"""``@tl.compute`` and ``tl.compose``: parallel, ordered, checkpointed transforms.

``ComputeFunction.eval`` orchestrates one run: it checks its arguments (``checks``),
cuts the input into blocks (``blocks``), has a scheduler from the registry
(``schedulers``) run them, and leaves the writer's side (adopt in order, checkpoint,
recover) to ``Run``, with a progress bar (``progress``) on the way.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from tensorlake.api.dataset import Dataset
from tensorlake.compute.blocks import cut_blocks
from tensorlake.compute.checks import (
    check_checkpoint_interval,
    check_input,
    check_scheduler,
    check_target,
    input_spec,
)
from tensorlake.compute.padding import PaddedInput
from tensorlake.compute.progress import SharedBar, progress_bar
from tensorlake.compute.report import EvalReport
from tensorlake.compute.run import Run
from tensorlake.compute.schedulers.base import SchedulerContext
from tensorlake.compute.schedulers.registry import make_scheduler
from tensorlake.compute.worker import Job
from tensorlake.errors import AllSamplesSkippedError, TransformArgumentError, TransformError

__all__ = ["ComputeFunction", "compose", "compute"]


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
        check_lengths: bool = True,
        pad_data_in: bool = False,
        read_only_ok: bool = False,
        cache_size: int = 16,
        checkpoint_interval: int = 0,
        ignore_errors: bool = False,
        verbose: bool = True,
        resume: bool = False,
        disable_rechunk: bool = False,
        client: Any = None,
        **kwargs: Any,
    ) -> EvalReport:
        """Run the transform on every item of ``data_in`` and append the rows to ``ds_out``.

        ``num_workers=0`` runs in this thread; otherwise ``scheduler`` is ``"processed"``
        (worker processes), ``"threaded"``, ``"serial"``, ``"ray"`` or ``"dask"`` (on a
        cluster: the one connected, ``client`` for Dask, else a local one of
        ``num_workers``; see the guide's "Running on a cluster"), or one added with
        ``register_scheduler``. ``checkpoint_interval=N`` commits after every N input
        items (and at the end). ``ignore_errors`` skips failing items (see the report's
        ``failed_indices``; ``AllSamplesSkippedError`` when every one fails). ``resume``
        skips the items the last checkpoint of this transform already holds.

        Deep Lake's arguments, with its meanings: ``check_lengths`` refuses a ``ds_out``
        whose tensors have different lengths (the rows appended would not line up);
        ``pad_data_in`` reads a dataset input to its ``max_len``, shorter tensors giving
        empty samples; ``verbose=False`` drops the warning about skipped items.
        ``read_only_ok`` (for in-place transforms, which tensorlake does not do:
        ``ds_out`` is always given), ``cache_size`` (blocks are sized by items here)
        and ``disable_rechunk`` (nothing is rechunked after an eval) change nothing.
        """
        if kwargs:
            raise TransformArgumentError(
                f"eval() got unexpected argument(s) {sorted(kwargs)}; it takes data_in, "
                "ds_out, num_workers, scheduler, progressbar, skip_ok, check_lengths, "
                "pad_data_in, read_only_ok, cache_size, checkpoint_interval, ignore_errors, "
                "verbose, resume, disable_rechunk and client."
            )
        started = time.perf_counter()
        core = check_target(ds_out, check_lengths)
        n, dataset_in = check_input(data_in, scheduler, num_workers, core)
        rows_in: Any = data_in
        if pad_data_in and dataset_in:
            rows_in = PaddedInput(data_in)
            n = len(rows_in)
        check_scheduler(scheduler, num_workers)
        check_checkpoint_interval(checkpoint_interval)
        run = Run(self.name, core, n, checkpoint_interval)
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
                input_spec(data_in, dataset_in, scheduler, num_workers, pad_data_in),
                core.links,
            )
            # the shown bar is made once the workers run: tqdm starts a thread
            shared = SharedBar()
            sched = make_scheduler(
                scheduler,
                SchedulerContext(
                    num_workers,
                    job,
                    [(_with_args(fn, args), kwargs) for fn, args, kwargs in self.stages],
                    core.storage,
                    rows_in if dataset_in else None,
                    shared.update,
                    run.uploads.stored,
                    client,
                ),
            )
            run.start()
            bar = progress_bar(progressbar, n, start, self.name)
            shared.show(bar)
            try:
                tasks = cut_blocks(
                    data_in, dataset_in, start, n, num_workers, checkpoint_interval, core
                )
                run.drive(sched, tasks, max(1, 2 * num_workers), bar)
                run.close_workers(sched)
            except BaseException as err:
                sched.stop()
                if not isinstance(err, TransformError):  # interrupted, storage down ...
                    run.restore(quiet=True)
                raise
            finally:
                sched.release()
                bar.close()
            report = run.report
            if ignore_errors and report.items and len(report.failed_indices) == report.items:
                run.restore()
                raise AllSamplesSkippedError(
                    f"All {report.items} input items failed and were skipped "
                    f"(ignore_errors=True), so nothing was written; ds_out is as it was. "
                    "Check the transform on one item, e.g. fn().eval(data_in[:1], ds_out).",
                    samples_processed=run.checkpoint_items,
                )
            run.finish()
        finally:
            run.close()
            core.end_batch(flush=False)
        report = run.report
        report.seconds = time.perf_counter() - started
        self.last_report = report
        if report.failed_indices and verbose:
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
    """``fn`` with its bound positional arguments after ``item, sample_out``."""
    if not args:
        return fn

    def call(item: Any, sample_out: Any, **kwargs: Any) -> Any:
        return fn(item, sample_out, *args, **kwargs)

    return call
