"""``ds.pytorch()``: a PyTorch loader with Deep Lake 3's arguments, exact epochs across
workers and ranks, an order that depends only on ``(seed, epoch)``, and ``state_dict``
resume mid-epoch.

How it is built on ``torch.utils.data.DataLoader``: the loader plans each pass in this
process (``loader.position``) and its sampler sends each batch's rows, with the rows
of the batch that worker gets next (to prefetch), to the workers in turn; a worker
opens the dataset read-only once, reads and decodes the batch (images straight into
shared memory it reuses, ``loader.shared_buffers``), applies ``transform`` per sample
and ``collate_fn``, and sends it back.
The DataLoader hands batches back in the order it asked for them, so the stream is the
plan's whatever the number of workers; batches are counted here as they reach the
caller, which is what ``state_dict()`` records.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cloudpickle
import numpy as np
import torch
import torch.distributed
from torch.utils.data import DataLoader, Sampler, default_collate, get_worker_info
from torch.utils.data import Dataset as TorchDataset

from tensorlake.api.dataset import Dataset
from tensorlake.engine.tensor.batch_decode import set_decode_threads
from tensorlake.errors import DatasetArgumentError, DatasetError
from tensorlake.integrations.loader import shared_buffers
from tensorlake.integrations.loader.epochs import Pass
from tensorlake.integrations.loader.reader import BatchReader
from tensorlake.integrations.loader.shared_buffers import (
    ArrayOf,
    BufferRef,
    WorkerBuffers,
    map_leaves,
)
from tensorlake.integrations.loader.source import Source
from tensorlake.integrations.loader.view import LoaderView, loader_view

__all__ = ["TorchLoader"]

Transform = Callable[[dict[str, Any]], Any] | Mapping[str, Callable[[Any], Any] | None]


@dataclass(frozen=True, slots=True)
class _Request:
    """One batch for a worker: its rows, and the rows of that worker's next batch."""

    rows: np.ndarray
    ahead: np.ndarray | None


class _Sampler(Sampler):
    """Yields the current pass's batches as ``_Request``s, in order."""

    def __init__(self, view: LoaderView, workers: int) -> None:
        self._view = view
        self._workers = max(1, workers)
        self.current: Pass | None = None

    def __iter__(self) -> Iterator[_Request]:
        current, rows = self.current, self._view.rows
        assert current is not None, "a pass is set before each iter()"
        for i in range(len(current)):
            nxt = i + self._workers
            ahead = rows[current.batch(nxt)] if nxt < len(current) else None
            yield _Request(rows[current.batch(i)], ahead)

    def __len__(self) -> int:
        return len(self.current) if self.current is not None else 0


@dataclass(frozen=True, slots=True)
class _AsTensor:
    """A numeric array that the receiving process turns into a tensor (sent by value:
    cheaper than a tensor, whose pickling moves small arrays into shared memory)."""

    array: np.ndarray


class _Batches(TorchDataset):
    """The map-style dataset the DataLoader's workers index with ``_Request``s."""

    def __init__(
        self,
        source: Source,
        names: dict[str, str],
        methods: dict[str, str],
        pad: bool,
        transform: Transform | None,
        collate_fn: Callable[[list[Any]], Any] | None,
        return_index: bool,
    ) -> None:
        self._source = source
        self._names = names
        self._methods = methods
        self._pad = pad
        self._transform = transform
        self._collate_fn = collate_fn
        self._return_index = return_index
        self._reader: BatchReader | None = None
        self._buffers: WorkerBuffers | None = None

    def __getstate__(self) -> dict[str, Any]:
        # workers that are not forked get the callables by value (cloudpickle), so a
        # transform defined in a notebook or __main__ works there too
        state = dict(self.__dict__, _reader=None, _buffers=None)
        state["_callables"] = cloudpickle.dumps((self._transform, self._collate_fn))
        del state["_transform"], state["_collate_fn"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        transform, collate_fn = cloudpickle.loads(state.pop("_callables"))
        self.__dict__.update(state, _transform=transform, _collate_fn=collate_fn)

    def __getitem__(self, request: _Request) -> Any:
        if self._reader is None:
            self._reader = BatchReader(self._source.open(), self._methods, self._pad)
        worker = get_worker_info()
        if worker is not None and self._buffers is None:
            self._buffers = WorkerBuffers()
            set_decode_threads((os.cpu_count() or 1) // worker.num_workers)
        buffers = self._buffers if worker is not None else None
        try:
            alloc = buffers.alloc if buffers is not None else None
            values = self._reader.read(request.rows, alloc, ahead=request.ahead)
            batch = self._collate(values, request.rows, by_value=buffers is not None)
            if buffers is None:
                return batch
            return buffers.message(_to_transit(batch, buffers))
        except BaseException:
            if buffers is not None:
                buffers.abandon()
            raise

    # -- building the batch -------------------------------------------------------------
    def _collate(self, values: dict[str, Any], rows: np.ndarray, by_value: bool) -> Any:
        if self._transform is None and self._collate_fn is None:
            return self._default_batch(values, rows, by_value)
        samples = []
        for i in range(len(rows)):
            sample = {self._names[name]: v[i] for name, v in values.items()}
            if self._return_index:
                sample["index"] = int(rows[i])
            samples.append(self._apply_transform(sample))
        return (self._collate_fn or default_collate)(samples)

    def _apply_transform(self, sample: dict[str, Any]) -> Any:
        transform = self._transform
        if transform is None:
            return sample
        if isinstance(transform, Mapping):
            out = {}
            for key, value in sample.items():
                fn = transform.get(key)
                out[key] = fn(value) if fn is not None else value
            return out
        return transform(sample)

    def _default_batch(
        self, values: dict[str, Any], rows: np.ndarray, by_value: bool
    ) -> dict[str, Any]:
        """What ``default_collate`` makes of the samples, from the stacked arrays (whose
        tensors a worker leaves to the receiving process: ``_AsTensor``)."""
        tensor = _AsTensor if by_value else torch.from_numpy
        batch: dict[str, Any] = {}
        for name, value in values.items():
            if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
                batch[self._names[name]] = tensor(value)
            else:
                batch[self._names[name]] = default_collate(list(value))
        if self._return_index:
            batch["index"] = tensor(np.array(rows, dtype=np.int64))
        return batch


def _to_transit(batch: Any, buffers: WorkerBuffers) -> Any:
    """A worker's batch with the arrays that lie in its shared buffers as ``BufferRef``s."""

    def leaf(obj: Any) -> Any:
        if isinstance(obj, _AsTensor):
            return buffers.ref(obj.array, as_tensor=True) or obj
        if isinstance(obj, np.ndarray) and obj.dtype.kind in "biuf":
            return buffers.ref(obj) or obj
        return obj

    return map_leaves(batch, leaf)


def _received(pin: bool) -> Callable[[Any, ArrayOf], Any]:
    """What a leaf of a received batch becomes in the caller's process: arrays of the
    workers' buffers, tensors (pinned when ``pin``) where the worker made tensors."""

    def tensor(t: torch.Tensor) -> torch.Tensor:
        return t.pin_memory() if pin else t

    def leaf(obj: Any, array_of: ArrayOf) -> Any:
        if isinstance(obj, BufferRef):
            array = array_of(obj)
            return tensor(torch.from_numpy(array)) if obj.as_tensor else array
        if isinstance(obj, _AsTensor):
            return tensor(torch.from_numpy(obj.array))
        if pin and isinstance(obj, torch.Tensor):
            return obj.pin_memory()
        return obj

    return leaf


class TorchLoader:
    """What ``ds.pytorch()`` returns: iterate it for batches; ``len()`` is the number of
    batches of the next pass; ``set_epoch``, ``state_dict`` and ``load_state_dict``
    choose the epoch and resume mid-epoch (in a new process too)."""

    def __init__(
        self,
        ds: Dataset,
        transform: Transform | None = None,
        tensors: Sequence[str] | None = None,
        num_workers: int = 1,
        batch_size: int = 1,
        drop_last: bool = False,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        pin_memory: bool = False,
        shuffle: bool = False,
        buffer_size: int = 2048,
        return_index: bool = True,
        pad_tensors: bool = False,
        transform_kwargs: dict[str, Any] | None = None,
        decode_method: dict[str, str] | None = None,
        persistent_workers: bool = False,
        seed: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        prefetch_factor: int | None = None,
        multiprocessing_context: str | None = None,
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
    ) -> None:
        if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
            raise DatasetArgumentError(f"num_workers must be an int >= 0, got {num_workers!r}.")
        if transform is not None and not (callable(transform) or isinstance(transform, Mapping)):
            raise DatasetError("transform must be a callable or a dict of per-tensor callables.")
        if transform_kwargs:
            if not callable(transform):
                raise DatasetError("transform_kwargs needs a callable transform.")
            transform = _Partial(transform, transform_kwargs)
        rank, world_size = _distributed(rank, world_size)
        self._view = loader_view(
            ds,
            tensors,
            batch_size,
            shuffle,
            seed,
            drop_last,
            buffer_size,
            rank,
            world_size,
            pad_tensors,
            decode_method,
            workers=num_workers > 0,
        )
        self._sampler = _Sampler(self._view, num_workers)
        context = _context(multiprocessing_context, num_workers)
        self.dataloader = DataLoader(
            _Batches(
                self._view.source,
                self._view.names,
                self._view.methods,
                self._view.pad,
                transform,
                collate_fn,
                return_index,
            ),
            batch_size=None,
            sampler=self._sampler,
            num_workers=num_workers,
            collate_fn=_identity,
            pin_memory=pin_memory and num_workers == 0,  # workers: pinned on receipt
            persistent_workers=persistent_workers and num_workers > 0,
            prefetch_factor=prefetch_factor if num_workers > 0 else None,
            multiprocessing_context=context,
            timeout=timeout,
            worker_init_fn=worker_init_fn,
        )
        self._workers = num_workers
        self._receiver = shared_buffers.Receiver()
        self._pin = pin_memory and num_workers > 0 and _accelerator()

    @property
    def epoch(self) -> int:
        return self._view.position.epoch

    @property
    def rank(self) -> int:
        return self._view.position.rank

    @property
    def world_size(self) -> int:
        return self._view.position.world_size

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s order from the next ``iter()`` (``shuffle`` reshuffles
        per epoch). Keeps a loaded state's position when ``epoch`` is its epoch."""
        self._view.position.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self._view.position.peek())

    def state_dict(self) -> dict[str, Any]:
        """Where the loader stands: ``load_state_dict`` on a new loader (a new process
        too) continues with exactly the batches not yet yielded."""
        return self._view.position.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._view.position.load_state_dict(state)

    def __iter__(self) -> Iterator[Any]:
        position = self._view.position
        current = position.begin()
        self._sampler.current = current
        leaf = _received(self._pin)
        batches = iter(self.dataloader)
        done = False
        try:
            for batch in batches:
                position.yielded(current)
                if isinstance(batch, shared_buffers.Message):  # from a worker
                    batch = self._receiver.open(batch, leaf)
                yield batch
            done = True
            position.finished(current)
        finally:
            if not done and hasattr(batches, "_shutdown_workers"):
                # now, not when the traceback lets go of the iterator: until then a
                # worker's exit would raise again, anywhere in this process
                batches._shutdown_workers()
            if not self.dataloader.persistent_workers:
                self._receiver.clear()  # the workers are gone: their buffers go with them

    def __repr__(self) -> str:
        p = self._view.position
        return (
            f"TorchLoader(rows={p.rows}, batch_size={p.batch_size}, shuffle={p.shuffle}, "
            f"seed={p.seed}, epoch={p.epoch}, rank={p.rank}/{p.world_size}, "
            f"num_workers={self._workers})"
        )


class _Partial:
    """``transform`` with ``transform_kwargs`` (a picklable partial)."""

    def __init__(self, fn: Callable[..., Any], kwargs: dict[str, Any]) -> None:
        self.fn, self.kwargs = fn, dict(kwargs)

    def __call__(self, sample: Any) -> Any:
        return self.fn(sample, **self.kwargs)


def _identity(batch: Any) -> Any:
    return batch


def _distributed(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """``rank``/``world_size``, defaulting to torch.distributed's when it is initialised."""
    initialised = torch.distributed.is_available() and torch.distributed.is_initialized()
    if rank is None:
        rank = torch.distributed.get_rank() if initialised else 0
    if world_size is None:
        world_size = torch.distributed.get_world_size() if initialised else 1
    return rank, world_size


def _accelerator() -> bool:
    """Whether there is memory to pin for (the DataLoader's own test)."""
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None:
        return bool(accelerator.is_available())
    return torch.cuda.is_available()


def _context(name: str | None, workers: int) -> Any:
    """The workers' start method: as asked, else fork where there is one (PyTorch's own
    default on Linux: code from a notebook or an unguarded script works, and a dataset in
    memory is inherited). Forked workers touch none of this process's open connections:
    they open the dataset anew."""
    if workers == 0:
        return None
    if name is None:
        fork = "fork" in multiprocessing.get_all_start_methods() and sys.platform != "darwin"
        name = "fork" if fork else "spawn"
    return multiprocessing.get_context(name)
