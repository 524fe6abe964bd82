"""One row's value <-> its stored bytes, following the tensor's htype.

``encode`` validates first and only then serialises, so it raises ``SampleError`` (naming
the tensor and row) before any state changes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.htypes.base import Encoded, Invalid, Pending
from tensorlake.engine.htypes.registry import get_htype
from tensorlake.errors import FormatError, SampleError

__all__ = ["decode", "encode"]


def encode(meta: TensorMeta, value: Any, pending: Pending, row: int) -> Encoded:
    """Validate ``value`` for ``meta`` and return its stored bytes and shape."""
    try:
        return pending.htype.encode(meta, value, pending)
    except Invalid as err:
        raise SampleError(str(err), tensor=meta.name, index=row) from None
    except SampleError as err:  # e.g. an unreadable tl.read() path
        raise SampleError(str(err), tensor=meta.name, index=row) from err.__cause__
    except FormatError as err:  # e.g. a tl.read() file that is not a valid image
        raise SampleError(f"not a valid sample: {err}", tensor=meta.name, index=row) from err


def decode(
    meta: TensorMeta,
    data: memoryview | bytes,
    shape: tuple[int, ...],
    out: np.ndarray | None = None,
) -> Any:
    """Stored bytes -> the value a reader gets (array, or str / object for text and json)."""
    return get_htype(meta.htype).decode(meta, data, shape, out)
