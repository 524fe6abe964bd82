"""``generic``: arrays of any shape and dtype, the default htype.

As in Deep Lake, a tensor created without an htype takes its kind from the first
samples that are not empty: strings make it a ``text`` tensor, dicts a ``json`` one
(``ds.create_tensor("captions"); ds.captions.append("a cat")``). Once a row has fixed
its dtype (or ``dtype=`` did), it stays an array tensor.

Its rows may be compressed as images (``sample_compression`` or ``chunk_compression``
``"png"`` / ``"jpeg"``, as in Deep Lake; ``image_rows.py``): uint8 arrays of shape
``(N,)``, ``(H, W)`` or ``(H, W, C)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.htypes.base import IMAGE_COMPRESSIONS, Encoded, Htype, Pending
from tensorlake.engine.htypes.image_rows import row_codec
from tensorlake.engine.htypes.scalar import JsonHtype, TextHtype

__all__ = ["GenericHtype"]

_TEXT = TextHtype()
_JSON = JsonHtype()


@dataclass(frozen=True, slots=True)
class GenericHtype(Htype):
    name: str = "generic"
    compressions: tuple[str | None, ...] = (None, "lz4", *IMAGE_COMPRESSIONS)

    def encode(self, meta: TensorMeta, value: Any, pending: Pending) -> Encoded:
        if isinstance(value, (str, dict)) and self._undecided(meta, pending):
            target = _TEXT if isinstance(value, str) else _JSON
            pending.htype = target  # the rest of the batch is encoded as target
            pending.new_htype = target.name
            pending.dtype = target.dtype
            return target.encode(meta, value, pending)
        return Htype.encode(self, meta, value, pending)

    @staticmethod
    def _undecided(meta: TensorMeta, pending: Pending) -> bool:
        """No row (this batch's included) has fixed the tensor's dtype or rank yet."""
        return (
            meta.htype == "generic"
            and pending.dtype is None
            and pending.ndim is None
            and row_codec(meta) not in IMAGE_COMPRESSIONS  # images: arrays only
        )
