"""``ds.batches()``: batches of numpy arrays for any framework, without torch.

The same epochs as ``ds.pytorch()`` (every row once, order by ``(seed, epoch)``,
``rank``/``world_size`` shards, ``state_dict`` resume), read in this process: the next
batch's bytes are fetched in the background while this one decodes (images decode on a
few threads).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tensorlake.api.dataset import Dataset, core_of
from tensorlake.integrations.loader.reader import BatchReader
from tensorlake.integrations.loader.view import loader_view

__all__ = ["Batches"]


class Batches:
    """An iterable of batches, each a dict ``{tensor: values}`` (plus ``"index"``): one
    array per tensor when its rows have one shape, else a list of per-row values.

    Example::

        for epoch in range(3):
            batches.set_epoch(epoch)
            for batch in batches:           # batches = ds.batches(64, shuffle=True)
                step(batch["images"], batch["labels"])
        state = batches.state_dict()        # resume later with load_state_dict(state)
    """

    def __init__(
        self,
        ds: Dataset,
        batch_size: int = 1,
        tensors: Sequence[str] | None = None,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
        buffer_size: int = 2048,
        rank: int = 0,
        world_size: int = 1,
        return_index: bool = True,
        pad_tensors: bool = False,
        decode_method: dict[str, str] | None = None,
    ) -> None:
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
            workers=False,
        )
        self._core = core_of(ds)
        self._return_index = return_index

    @property
    def epoch(self) -> int:
        return self._view.position.epoch

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s order from the next ``iter()`` (reshuffles)."""
        self._view.position.set_epoch(epoch)

    def __len__(self) -> int:
        """Batches the next pass yields (this rank's)."""
        return len(self._view.position.peek())

    def state_dict(self) -> dict[str, Any]:
        """Where this iterator stands: ``load_state_dict`` continues after the last
        batch yielded, in a new process too."""
        return self._view.position.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._view.position.load_state_dict(state)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        view = self._view
        position = view.position
        current = position.begin()
        reader = BatchReader(self._core, view.methods, view.pad)
        try:
            for i in range(len(current)):
                rows = view.rows[current.batch(i)]
                ahead = view.rows[current.batch(i + 1)] if i + 1 < len(current) else None
                values = reader.read(rows, ahead=ahead)
                batch = {view.names[name]: value for name, value in values.items()}
                if self._return_index:
                    batch["index"] = np.array(rows, dtype=np.int64)
                position.yielded(current)
                yield batch
            position.finished(current)
        finally:
            reader.close()
