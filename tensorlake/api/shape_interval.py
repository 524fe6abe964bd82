"""``ShapeInterval``: the smallest and largest shape of a view's rows, length included
(Deep Lake's ``tensor.shape_interval``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ShapeInterval"]


@dataclass(frozen=True, slots=True)
class ShapeInterval:
    """``lower`` and ``upper`` bound every dimension of a view (the first is its number
    of rows); a dimension where they differ is dynamic.

    Example::

        t.append(np.zeros((10, 10)))
        t.append(np.zeros((10, 15)))
        t.shape_interval          # (2, 10, 10:15)
        t.shape_interval.lower    # (2, 10, 10)
    """

    lower: tuple[int, ...]
    upper: tuple[int, ...]

    @property
    def is_dynamic(self) -> bool:
        """Whether some dimension differs between rows."""
        return self.lower != self.upper

    def astuple(self) -> tuple[int | None, ...]:
        """The shape, ``None`` where rows differ (what ``tensor.shape`` gives)."""
        return tuple(lo if lo == up else None for lo, up in zip(self.lower, self.upper))

    def __str__(self) -> str:
        dims = [str(lo) if lo == up else f"{lo}:{up}" for lo, up in zip(self.lower, self.upper)]
        return f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"

    __repr__ = __str__
