"""Shared memory that a loader's worker decodes batches into, and reuses.

A fresh shared-memory buffer per batch costs what the decode costs again: every page is
faulted in and zeroed by the worker (~23 ms for a batch of 32 640x480 images here), its
descriptor is handed over through a socket handshake and the receiver maps and unmaps it
(~5-10 ms). So a worker keeps its buffers (``memfd``s): each goes to the receiving
process once (its descriptor travels with the first batch that uses it and stays mapped
there), and later batches name it by number. A buffer is reused only once the receiver
let go of every array of the batch that used it: byte 0 of the buffer is 1 from the
worker's ``alloc`` until the receiver's arrays over it are garbage, when the receiver
sets it back to 0. A batch the caller keeps (``list(loader)``) keeps its buffer; the
worker makes another. Linux and other systems with ``memfd_create``; elsewhere
``available()`` is False and workers allocate ordinary arrays.
"""

from __future__ import annotations

import mmap
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import resource_sharer
from typing import Any, TypeAlias

import numpy as np

__all__ = [
    "ArrayOf",
    "BufferRef",
    "Message",
    "Receiver",
    "WorkerBuffers",
    "available",
    "map_leaves",
]

HEADER = 64  # byte 0: the busy flag; the data starts here, aligned
MIN_BYTES = 1 << 20  # smaller arrays travel by value, pickled
ROUND = 1 << 20  # capacities are whole MiB, so batches of nearby sizes share buffers
KEEP_SMALL = 2  # free buffers kept when a batch needs a bigger one (for other arrays)


def available() -> bool:
    """Whether this system has ``memfd_create`` (else workers allocate plain arrays)."""
    return hasattr(os, "memfd_create")


@dataclass(slots=True)
class BufferRef:
    """An array of a batch, in one of the sending worker's buffers (``buffer``)."""

    buffer: int
    offset: int
    shape: tuple[int, ...]
    dtype: str
    as_tensor: bool = False


ArrayOf: TypeAlias = Callable[[BufferRef], np.ndarray]


@dataclass(slots=True)
class Message:
    """A batch in transit: its structure with ``BufferRef``s in place of the arrays that
    lie in shared buffers; the buffers the batch holds (``buffers``: number -> capacity,
    with the descriptor of those the receiver has not mapped yet in ``new``); and the
    buffers the worker dropped, which the receiver unmaps (``retired``)."""

    pid: int
    batch: Any
    buffers: dict[int, int]
    new: dict[int, Any]
    retired: list[int]


class _Buffer:
    __slots__ = ("address", "capacity", "fd", "id", "mm")

    def __init__(self, number: int, capacity: int) -> None:
        fd = os.memfd_create("tensorlake-batch", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, HEADER + capacity)
            self.mm = mmap.mmap(fd, HEADER + capacity)
        except BaseException:
            os.close(fd)
            raise
        self.fd: int | None = fd  # open until the receiver has been sent a copy
        self.id, self.capacity = number, capacity
        self.address = np.frombuffer(self.mm, np.uint8, 1, HEADER).__array_interface__["data"][0]

    @property
    def busy(self) -> bool:
        return self.mm[0] != 0

    def handover(self) -> Any:
        """The descriptor for the receiver (once): a copy it fetches on unpickling."""
        assert self.fd is not None
        copy = resource_sharer.DupFd(self.fd)
        self.close_fd()
        return copy

    def close_fd(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class WorkerBuffers:
    """A worker's buffers: ``alloc`` for each array of a batch, then ``message`` (or
    ``abandon`` when the batch failed)."""

    def __init__(self) -> None:
        self._buffers: list[_Buffer] = []
        self._batch: list[_Buffer] = []
        self._retired: list[int] = []
        self._next = 0

    def alloc(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes < MIN_BYTES or not available():
            return np.empty(shape, dtype)
        buffer = self._free(nbytes) or self._new(nbytes)
        buffer.mm[0] = 1
        self._batch.append(buffer)
        return np.frombuffer(buffer.mm, np.uint8, nbytes, HEADER).view(dtype).reshape(shape)

    def _free(self, nbytes: int) -> _Buffer | None:
        free = [b for b in self._buffers if b not in self._batch and not b.busy]
        fits = [b for b in free if b.capacity >= nbytes]
        if fits:
            return min(fits, key=lambda b: b.capacity)
        for small in free[KEEP_SMALL:]:  # too small now: dropped, but for a few
            self._buffers.remove(small)
            small.close_fd()  # (never sent: its first batch failed)
            self._retired.append(small.id)
        return None

    def _new(self, nbytes: int) -> _Buffer:
        buffer = _Buffer(self._next, -(-nbytes // ROUND) * ROUND)
        self._next += 1
        self._buffers.append(buffer)
        return buffer

    def ref(self, array: np.ndarray, as_tensor: bool = False) -> BufferRef | None:
        """``array`` as a reference to its place in one of this batch's buffers (None
        when it lies in none, or is not contiguous)."""
        if not array.flags.c_contiguous:
            return None
        address = array.__array_interface__["data"][0]
        for buffer in self._batch:
            offset = address - buffer.address
            if offset >= 0 and offset + array.nbytes <= buffer.capacity:
                return BufferRef(buffer.id, offset, array.shape, array.dtype.str, as_tensor)
        return None

    def message(self, batch: Any) -> Message:
        """The batch for the receiver (``batch`` with its arrays as ``BufferRef``s); the
        batch's buffers stay busy until the receiver is done with them."""
        new = {b.id: b.handover() for b in self._batch if b.fd is not None}
        held = {b.id: b.capacity for b in self._batch}
        message = Message(os.getpid(), batch, held, new, self._retired)
        self._batch, self._retired = [], []
        return message

    def abandon(self) -> None:
        """The batch failed: its buffers are free again."""
        for buffer in self._batch:
            buffer.mm[0] = 0
        self._batch = []


class Receiver:
    """The receiving process's side: each worker's buffers mapped once, and arrays over
    them that free their buffer when they (and every view of them) are garbage."""

    def __init__(self) -> None:
        self._maps: dict[tuple[int, int], mmap.mmap] = {}

    def open(self, message: Message, leaf: Callable[[Any, ArrayOf], Any]) -> Any:
        """``message``'s batch, each leaf of its structure replaced by ``leaf(obj,
        array_of)``; ``array_of(ref)`` is the array a ``BufferRef`` stands for."""
        pid = message.pid
        for number in message.retired:
            self._maps.pop((pid, number), None)
        for number, fd in message.new.items():
            handle = fd.detach()
            try:
                capacity = message.buffers[number]
                self._maps[(pid, number)] = mmap.mmap(handle, HEADER + capacity)
            finally:
                os.close(handle)
        flats: dict[int, np.ndarray] = {}

        def array_of(ref: BufferRef) -> np.ndarray:
            flat = flats.get(ref.buffer)
            if flat is None:
                mm = self._maps[(pid, ref.buffer)]
                flat = np.frombuffer(mm, np.uint8, message.buffers[ref.buffer], HEADER)
                weakref.finalize(flat, _release, mm)  # when no view of it is left
                flats[ref.buffer] = flat
            dtype = np.dtype(ref.dtype)
            size = int(np.prod(ref.shape, dtype=np.int64)) * dtype.itemsize
            return flat[ref.offset : ref.offset + size].view(dtype).reshape(ref.shape)

        batch = map_leaves(message.batch, lambda obj: leaf(obj, array_of))
        for number in message.buffers:
            if number not in flats:  # held by the batch, referenced by nothing in it
                _release(self._maps[(pid, number)])
        return batch

    def clear(self) -> None:
        """Unmap every buffer (its workers are gone); arrays still alive keep theirs."""
        self._maps.clear()


def _release(mm: mmap.mmap) -> None:
    mm[0] = 0  # (never closed here: arrays over it keep it mapped)


def map_leaves(obj: Any, fn: Callable[[Any], Any]) -> Any:
    """``obj`` with every leaf of its dicts, lists and (plain) tuples replaced by ``fn``."""
    if isinstance(obj, dict):
        return type(obj)((k, map_leaves(v, fn)) for k, v in obj.items())
    if isinstance(obj, list):
        return [map_leaves(v, fn) for v in obj]
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return tuple(map_leaves(v, fn) for v in obj)
    return fn(obj)
