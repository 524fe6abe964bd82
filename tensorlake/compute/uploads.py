"""``Uploads``: which blocks worker processes have finished storing.

A process worker stores a block's chunks behind its next block and reports them
stored through the progress pipe, after the block's result. A commit that names a
block's chunks waits for that report, on the thread that stores the commit, so no
commit ever names a chunk that is not stored.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from tensorlake.errors import StorageError

__all__ = ["Uploads"]


class Uploads:
    """The blocks (by start) reported stored, or not, and waits on them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._done: dict[int, str | None] = {}  # block start -> None, or why it failed
        self._aborted = False

    def stored(self, start: int, error: str | None) -> None:
        """The block starting at input item ``start`` is stored (``error`` None) or not."""
        with self._cond:
            self._done[start] = error
            self._cond.notify_all()

    def abort(self) -> None:
        """Waits end at once (with an error): the eval is failing."""
        with self._cond:
            self._aborted = True
            self._cond.notify_all()

    def wait(self, blocks: Sequence[int]) -> None:
        """Until every block of ``blocks`` (by start) is stored; ``StorageError`` if one
        could not be, or if the eval stopped first."""
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
