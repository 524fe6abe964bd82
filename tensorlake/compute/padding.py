"""``pad_data_in``: a dataset whose tensors have different lengths read as ``max_len``
rows, the shorter tensors giving empty samples past their ends (Deep Lake's meaning)."""

from __future__ import annotations

from tensorlake.api.dataset import Dataset
from tensorlake.api.tensor import Tensor
from tensorlake.compute.sample_out import EmptySample

__all__ = ["PaddedInput", "PaddedRow"]


class PaddedRow:
    """Row ``index`` of a dataset past the end of some of its tensors: ``row.images`` /
    ``row["images"]`` is the one-row view where the tensor has the row, else an
    ``EmptySample``."""

    __slots__ = ("_ds", "_index")

    def __init__(self, ds: Dataset, index: int) -> None:
        self._ds, self._index = ds, index

    def __getitem__(self, name: str) -> Tensor | EmptySample:
        tensor = self._ds[name]
        return tensor[self._index] if self._index < len(tensor) else EmptySample(tensor)

    def __getattr__(self, name: str) -> Tensor | EmptySample:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    @property
    def tensors(self) -> dict[str, Tensor | EmptySample]:
        return {name: self[name] for name in self._ds.tensors}

    def __repr__(self) -> str:
        return f"PaddedRow({self._ds.path!r}, {self._index})"


class PaddedInput:
    """The rows of ``ds`` up to its ``max_len``: ``ds[i]`` below ``len(ds)``, a
    ``PaddedRow`` from there on."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self._min = len(ds)

    def __len__(self) -> int:
        return self.ds.max_len

    def __getitem__(self, index: int) -> Dataset | PaddedRow:
        return self.ds[index] if index < self._min else PaddedRow(self.ds, index)
