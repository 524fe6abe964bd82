"""Writing a file around the page cache (``O_DIRECT``), for bulk writers.

A buffered write copies every byte into page-cache pages the kernel must first
allocate; where fresh memory is expensive (a VM whose host backs each new page on
first touch: ~2.5 us a page on the machines we measure on) that costs more than the
copy. Writing 198 MB of new files took 0.55 CPU-seconds buffered and 0.05 with
``O_DIRECT`` from one reused buffer. The data then is on the device, not in the page
cache: the right trade for chunks a compute worker writes and nobody reads soon.

``O_DIRECT`` needs the memory address, the length and the file offset aligned to the
device's block size, so the parts are copied into one page-aligned buffer (reused:
one per process, grown as needed up to ``WINDOW``), written whole blocks at a time,
and the file is then truncated to its true length.
"""

from __future__ import annotations

import mmap
import os
import threading
from collections.abc import Sequence

from tensorlake.storage.base import Bytes

__all__ = ["ALIGN", "AVAILABLE", "FLAGS", "WINDOW", "make_buffered", "write_direct"]

ALIGN = 4096  # covers 512- and 4096-byte logical blocks
AVAILABLE = hasattr(os, "O_DIRECT")
FLAGS = getattr(os, "O_DIRECT", 0)


class _Buffer:
    """The process's aligned staging buffer (mmap memory is page-aligned)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """A fresh lock and no memory (a forked child must not inherit a lock some other
        thread held)."""
        self.lock = threading.Lock()
        self.memory: mmap.mmap | None = None

    def view(self, nbytes: int) -> memoryview:
        if self.memory is None or len(self.memory) < nbytes:
            if self.memory is not None:
                self.memory.close()
            self.memory = mmap.mmap(-1, -(-nbytes // (1 << 20)) * (1 << 20))
        return memoryview(self.memory)[:nbytes]


_buffer = _Buffer()
if AVAILABLE:  # a forked child must not inherit a lock some other thread held
    os.register_at_fork(after_in_child=_buffer.reset)

WINDOW = 16 << 20  # the most an object takes of the buffer at once (a multiple of ALIGN)


def write_direct(fd: int, parts: Sequence[Bytes]) -> None:
    """Write the concatenated ``parts`` to ``fd``, a new empty file opened with
    ``O_DIRECT`` (``FLAGS``), through the buffer ``WINDOW`` bytes at a time. Raises
    ``OSError`` where the file system refuses an aligned direct write; the caller then
    writes the file the usual way."""
    total = sum(len(p) for p in parts)
    if not total:
        return
    with _buffer.lock:
        view = _buffer.view(min(WINDOW, -(-total // ALIGN) * ALIGN))
        try:
            filled = 0
            for part in parts:
                data = memoryview(part).cast("B")
                while data:
                    n = min(len(data), len(view) - filled)
                    view[filled : filled + n] = data[:n]
                    filled, data = filled + n, data[n:]
                    if filled == len(view):
                        _write_out(fd, view)
                        filled = 0
            if filled:
                padded = -(-filled // ALIGN) * ALIGN
                view[filled:padded] = bytes(padded - filled)
                _write_out(fd, view[:padded])
        finally:
            view.release()
    os.ftruncate(fd, total)


def _write_out(fd: int, view: memoryview) -> None:
    written = 0
    while written < len(view):
        written += os.write(fd, view[written:])


def make_buffered(fd: int) -> None:
    """Turn ``fd`` into an ordinary (page-cache) empty file, after a refused direct write."""
    import fcntl  # POSIX only, as O_DIRECT is

    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~FLAGS)
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
