"""Objects moved concurrently, under one byte-counting progress bar per operation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TypeVar

from tensorlake import config
from tensorlake.compute.progress import ProgressBar, progress_bar

__all__ = ["Transfer"]

T = TypeVar("T")


class Transfer:
    """One push's or pull's moves: every batch runs on ``config.io_threads()`` threads
    and counts into the same bar, whose total grows as batches are found."""

    def __init__(self, label: str, progressbar: bool) -> None:
        self.label, self.progressbar = label, progressbar
        self.bar: ProgressBar | None = None  # made at the first batch: none for no work
        self.bytes = 0
        self.objects = 0

    def run(self, items: Sequence[T], move: Callable[[T], int], total_bytes: int) -> int:
        """``move(item)`` (which returns the bytes it moved) for every item; returns the
        bytes moved. The first error cancels what has not started and is raised."""
        if not items:
            return 0
        if self.bar is None:
            self.bar = progress_bar(self.progressbar, 0, 0, self.label, "B", unit_scale=True)
        bar = self.bar
        bar.total = (bar.total or 0) + total_bytes
        moved = 0
        with ThreadPoolExecutor(min(config.io_threads(), len(items))) as pool:
            futures = [pool.submit(move, item) for item in items]
            try:
                for future in as_completed(futures):
                    n = future.result()
                    moved += n
                    bar.update(n)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        self.bytes += moved
        self.objects += len(items)
        return moved

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
