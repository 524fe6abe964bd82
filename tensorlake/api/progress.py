"""The progress bar of dataset methods that read a whole dataset (``ds.verify``).

No tqdm object is made unless the bar is shown (one starts a monitor thread, and a
process with threads cannot fork compute workers safely), and it is made on the first
report, once the total is known.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm.auto import tqdm

__all__ = ["byte_bar"]


@contextmanager
def byte_bar(enabled: bool, name: str) -> Iterator[Callable[[int, int], None] | None]:
    """A ``report(done, total)`` callback drawing a bar of bytes on stderr, closed at the
    end of the block; None when not ``enabled``.

    Example::

        with byte_bar(True, "verify") as report:
            work(progress=report)
    """
    if not enabled:
        yield None
        return
    bars: list[tqdm] = []

    def report(done: int, total: int) -> None:
        if not bars:
            bars.append(
                tqdm(
                    total=total,
                    desc=name,
                    unit="B",
                    unit_scale=True,
                    file=sys.stderr,
                    dynamic_ncols=True,
                )
            )
        bars[0].update(done - bars[0].n)

    try:
        yield report
    finally:
        for bar in bars:
            bar.close()
