"""Where a loader stands in its epochs, and the ``state_dict`` that resumes it.

Each ``iter()`` is a pass: it starts the current epoch from its first batch, unless a
state was loaded (``load_state_dict``), in which case it continues exactly after the
last batch that state had yielded. A pass that runs to its end moves the loader to the
next epoch (so each epoch reshuffles even without ``set_epoch``); ``set_epoch(e)``
chooses the epoch, and keeps a loaded position when ``e`` is the epoch it was saved in.

A state counts the rows of the epoch's order consumed by all ranks together (each rank
having yielded as many batches as this one, as DDP training does), so a run can resume
on another number of workers, another batch size or another world size. A state saved
after the last batch of an epoch resumes at the start of the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tensorlake.errors import DatasetArgumentError, DatasetError
from tensorlake.integrations.loader.epochs import Pass, epoch_order

__all__ = ["STATE_FORMAT", "Position"]

STATE_FORMAT = "tensorlake.loader/1"


@dataclass
class Position:
    """The epochs of one loader: their order, this rank's passes, and the state."""

    units: np.ndarray  # the chunk of each position of the view (for the shuffle)
    batch_size: int
    drop_last: bool
    shuffle: bool
    seed: int
    window: int
    rank: int
    world_size: int
    epoch: int = 0
    _start: int = 0  # rows consumed before the pass (a loaded state), else 0
    _resume: bool = False
    _pass: Pass | None = None
    _yielded: int = 0
    _orders: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(self.units)

    def order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            self._orders.clear()  # one epoch at a time is enough
            self._orders[epoch] = epoch_order(
                self.units, self.shuffle, self.seed, epoch, self.window
            )
        return self._orders[epoch]

    def _make(self, start: int) -> Pass:
        order = self.order(self.epoch)
        return Pass(order, start, self.batch_size, self.drop_last, self.rank, self.world_size)

    def _next_pass(self) -> Pass:
        if self._pass is not None and self._yielded >= len(self._pass):
            self._finish()  # every batch was taken, without the iterator being exhausted
        made = self._make(self._start if self._resume else 0)
        if self._resume and made.start >= made.end and made.start > 0:
            self.epoch += 1  # saved at the very end of an epoch
            made = self._make(0)
        return made

    def _finish(self) -> None:
        self._pass = None
        self._resume = False
        self._start = 0
        self.epoch += 1

    def peek(self) -> Pass:
        """The pass the next ``iter()`` would make."""
        return self._next_pass()

    def begin(self) -> Pass:
        """Start a pass: this rank's batches from where the loader stands."""
        self._pass = self._next_pass()
        self._resume = False
        self._start = 0
        self._yielded = 0
        return self._pass

    def yielded(self, current: Pass) -> None:
        """One more batch of ``current`` reached the caller."""
        if current is self._pass:
            self._yielded += 1

    def finished(self, current: Pass) -> None:
        """``current`` ran to its end: the loader moves to the next epoch."""
        if current is self._pass:
            self._finish()

    def set_epoch(self, epoch: int) -> None:
        if not isinstance(epoch, int) or epoch < 0:
            raise DatasetArgumentError(f"epoch must be an int >= 0, got {epoch!r}.")
        if epoch != self.epoch:
            self.epoch = epoch
            self._pass = None
            self._resume = False
            self._start = 0

    # -- state --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        epoch = self.epoch
        if self._pass is not None and self._yielded >= len(self._pass):
            epoch, consumed = epoch + 1, 0  # this rank's epoch is over
        elif self._pass is not None:
            consumed = self._pass.consumed(self._yielded)
        else:
            consumed = self._start if self._resume else 0
        return {
            "format": STATE_FORMAT,
            "epoch": epoch,
            "rows_consumed": int(consumed),
            "rows": self.rows,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "batch_size": self.batch_size,
            "drop_last": self.drop_last,
            "rank": self.rank,
            "world_size": self.world_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check = _checker(state)
        check("format", lambda v: v == STATE_FORMAT, "a tensorlake loader's state_dict()")
        check("rows", lambda v: v == self.rows, f"{self.rows} rows, as this loader reads")
        check("shuffle", lambda v: v == self.shuffle, f"shuffle={self.shuffle}")
        check("seed", lambda v: v == self.seed, f"seed={self.seed}")
        check("epoch", lambda v: isinstance(v, int) and v >= 0, "an epoch >= 0")
        check(
            "rows_consumed",
            lambda v: isinstance(v, int) and 0 <= v <= self.rows,
            f"0..{self.rows} rows consumed",
        )
        self.epoch = state["epoch"]
        self._start = state["rows_consumed"]
        self._resume = True
        self._pass = None


def _checker(state: Any) -> Callable[[str, Callable[[Any], bool], str], None]:
    if not isinstance(state, dict):
        raise DatasetError(f"load_state_dict() takes a dict from state_dict(), got {state!r}.")

    def check(key: str, ok: Callable[[Any], bool], expected: str) -> None:
        if key not in state or not ok(state[key]):
            raise DatasetError(
                f"This state cannot resume this loader: its '{key}' is "
                f"{state.get(key)!r}, expected {expected}. A state resumes a loader over "
                "the same view with the same shuffle and seed."
            )

    return check
