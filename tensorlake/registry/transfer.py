"""Objects moved concurrently, with one byte-counting progress bar in this process."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TypeVar

from tensorlake import config
from tensorlake.compute.progress import progress_bar

__all__ = ["transfer"]

T = TypeVar("T")


def transfer(
    items: Sequence[T],
    move: Callable[[T], int],
    label: str,
    total_bytes: int | None,
    progressbar: bool,
) -> int:
    """Run ``move(item)`` (returns the bytes it moved) for every item on
    ``config.io_threads()`` threads; returns the bytes moved. The first error stops the
    rest (those under way finish) and is raised."""
    if not items:
        return 0
    bar = progress_bar(progressbar, total_bytes, 0, label, unit="B", unit_scale=True)
    moved = 0
    try:
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
    finally:
        bar.close()
    return moved
