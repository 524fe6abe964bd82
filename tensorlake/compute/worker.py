"""What runs a block anywhere: a block of input items in, a block descriptor out.

Blocks run in the caller (serial), on threads or in worker processes (what only a
worker process does is in ``process_worker``). ``run_block`` turns each item of a
``Task`` into rows with the transform's stages and writes them as chunks on the target
storage; the ``BlockResult`` carries the block's chunk table (or the item that failed)
back to the writer, which adopts the blocks in input order.
"""

from __future__ import annotations

import pickle
import reprlib
import traceback
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from tensorlake.compute.sample_out import SampleOut, rows_of
from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.links.resolver import LinkResolver
from tensorlake.engine.tensor.block import BlockDescriptor, BlockWriter
from tensorlake.engine.tensor.chunk_io import ChunkWriter
from tensorlake.storage import Storage

__all__ = [
    "BlockResult",
    "ItemFailure",
    "Job",
    "RemoteTraceback",
    "Stage",
    "Task",
    "run_block",
    "run_stages",
    "short_repr",
]

Stage = tuple[Callable[..., Any], dict[str, Any]]  # a transform function and its kwargs


@dataclass(slots=True)
class Job:
    """Everything every block of one ``eval`` shares."""

    tensors: list[str]
    target_url: str
    target_creds: dict | None = field(repr=False)  # secrets: never in a repr
    ignore_errors: bool
    skip_ok: bool
    # url, creds, commit, pad
    input_dataset: tuple[str, dict | None, str, bool] | None = field(default=None, repr=False)
    # creds keys and the creds populated (memory only)
    links: LinkResolver | None = field(default=None, repr=False)
    # list[Stage] by cloudpickle, for workers that are not forked
    stages: bytes | None = field(default=None, repr=False)
    # the caller's environment, for workers that are not forked: a forkserver started
    # earlier would otherwise hand them the environment of that moment (credentials
    # set since, TENSORLAKE_* settings)
    environ: dict[str, str] | None = field(default=None, repr=False)


@dataclass(slots=True)
class Task:
    """One block: input items ``[start, start + len)`` (rows, for a dataset input)."""

    start: int
    items: list[Any] | None  # None: rows of the input dataset
    count: int
    metas: dict[str, dict[str, Any]]  # tensor metas when the block was submitted

    def __reduce__(self) -> tuple:
        # items may be instances of classes defined in __main__: send them by value
        fields = (self.start, self.items, self.count, self.metas)
        return (_task_from_bytes, (cloudpickle.dumps(fields),))


def _task_from_bytes(data: bytes) -> Task:
    return Task(*pickle.loads(data))


@dataclass(slots=True)
class ItemFailure:
    """The item that failed a block (without ``ignore_errors``): the writer's error
    names it, with the item's exception as cause and its traceback as text."""

    index: int
    item_repr: str
    error: BaseException
    traceback: str


@dataclass(slots=True)
class BlockResult:
    """What a block became: its rows as a chunk table to adopt, the items skipped with
    ``ignore_errors``, or the item that failed it."""

    start: int
    count: int
    descriptor: BlockDescriptor | None
    failed: list[int] = field(default_factory=list)
    failure: ItemFailure | None = None
    uploading: bool = False  # its chunks are still being stored: a STORED message follows


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, as text (the cause of the error)."""

    def __str__(self) -> str:
        return "\n" + self.args[0]


def short_repr(item: Any) -> str:
    """``repr(item)`` cut short, for error messages about one input item."""
    r = reprlib.Repr()
    r.maxstring, r.maxother, r.maxlist, r.maxdict = 80, 80, 6, 6
    return r.repr(item)


def run_block(
    job: Job,
    stages: list[Stage],
    task: Task,
    storage: Storage,
    input_dataset: Any,
    progress: Callable[[int], None],
    should_stop: Callable[[], bool] = lambda: False,
    ship: bool = False,
    background_writes: bool = True,
    chunk_writer: ChunkWriter | None = None,
) -> BlockResult:
    """Run every item of ``task`` through the pipeline, writing rows as chunks
    (``ship``: also return their bytes, for a target the worker cannot reach;
    ``chunk_writer``: the caller's, which goes on storing them after this returns)."""
    metas = {name: TensorMeta.from_dict(task.metas[name]) for name in job.tensors}
    writer = BlockWriter(storage, metas, ship, job.links, background_writes, chunk_writer)
    result = BlockResult(task.start, task.count, None)
    tensors = frozenset(job.tensors)
    for offset in range(task.count):
        if should_stop():  # the eval failed elsewhere: stop writing
            writer.abandon()
            return result
        index = task.start + offset
        item = input_dataset[index] if task.items is None else task.items[offset]
        try:
            columns = run_stages(stages, item, tensors)
            if columns:
                writer.append(columns, skip_ok=job.skip_ok)
            # free the item's arrays now, so the next item reuses their memory while it is
            # still in the CPU's caches: the COCO transform ran ~5% faster in a worker
            del columns
        except Exception as err:
            if job.ignore_errors:
                result.failed.append(index)
            else:
                result.failure = ItemFailure(
                    index, short_repr(item), _portable(err), traceback.format_exc()
                )
                break
        progress(1)
    if result.failure is None:
        result.descriptor = writer.finish()
    else:
        writer.abandon()
    return result


def run_stages(stages: list[Stage], item: Any, tensors: Collection[str]) -> dict[str, list[Any]]:
    """The rows one input item becomes after every transform of the pipeline."""
    items = [item]
    columns: dict[str, list[Any]] = {}
    for k, (fn, kwargs) in enumerate(stages):
        last = k == len(stages) - 1
        out = SampleOut(tensors if last else None)
        for it in items:
            fn(it, out, **kwargs)
        columns = out.take()
        if not last:
            items = rows_of(columns)
    return columns


def _portable(err: BaseException) -> BaseException:
    """``err`` if it survives pickling (to reach the parent), else a stand-in."""
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        return RuntimeError(f"{type(err).__name__}: {err}")
