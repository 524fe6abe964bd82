"""The rows of an epoch: their order, cut into batches, dealt to ranks.

The order depends only on ``(seed, epoch)`` and the view, never on the number of
workers, so a run is reproducible whatever the machine. Shuffling is chunk-aware: the
chunks holding the rows are permuted, then each row moves a random distance of up to
a window of rows (a vectorised stand-in for a streaming shuffle buffer of that size),
so the rows read at any moment come from a few chunks. A view that fits in the window
gets a uniform random permutation.

Batches are consecutive slices of the order; batch ``j`` of a pass goes to rank
``j % world_size``. Workers then take a rank's batches in turn (``torch``'s loader asks
its workers round-robin), so the stream a rank yields is the same for any worker count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Pass", "epoch_order"]


def epoch_order(units: np.ndarray, shuffle: bool, seed: int, epoch: int, window: int) -> np.ndarray:
    """Positions ``0..n-1`` of the view in the order epoch ``epoch`` visits them.

    ``units[i]`` is the chunk holding position ``i`` (rows of one chunk stay near each
    other before the window mixes them); ``window`` is the shuffle window in rows.
    """
    n = len(units)
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng([seed, epoch])
    if n <= window:
        return rng.permutation(n).astype(np.int64)
    ids, inverse = np.unique(units, return_inverse=True)
    unit_rank = rng.permutation(len(ids))
    by_unit = np.lexsort((np.arange(n), unit_rank[inverse]))  # chunks shuffled, rows in order
    keys = np.arange(n) + rng.random(n) * window
    return by_unit[np.argsort(keys, kind="stable")].astype(np.int64)


@dataclass(frozen=True)
class Pass:
    """One rank's batches of one pass over an epoch, from row ``start`` of its order on.

    ``start`` counts the rows of the epoch's order consumed before this pass (by every
    rank together: a resumed pass). With ``drop_last``, only whole batches are kept, and
    as many per rank (what ``DistributedSampler(drop_last=True)`` with a loader's
    ``drop_last`` gives); without it every row is in exactly one batch of one rank, and
    ranks' batch counts differ by at most one.
    """

    order: np.ndarray  # positions in the view, the epoch's whole order
    start: int
    batch_size: int
    drop_last: bool
    rank: int
    world_size: int

    @property
    def end(self) -> int:
        """Where the rows this epoch yields end in its order (``drop_last`` cuts)."""
        n = len(self.order)
        if not self.drop_last:
            return n
        per_round = self.batch_size * self.world_size
        return self.start + (n - self.start) // per_round * per_round

    def __len__(self) -> int:
        """The number of batches this rank yields."""
        total = -(-(max(0, self.end - self.start)) // self.batch_size)
        return max(0, -(-(total - self.rank) // self.world_size))

    def batch(self, i: int) -> np.ndarray:
        """Positions of this rank's ``i``-th batch."""
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} of {len(self)}")
        j = i * self.world_size + self.rank
        lo = self.start + j * self.batch_size
        return self.order[lo : min(lo + self.batch_size, self.end)]

    def consumed(self, batches: int) -> int:
        """Rows of the order consumed once every rank has yielded ``batches`` batches."""
        return min(self.end, self.start + batches * self.batch_size * self.world_size)
