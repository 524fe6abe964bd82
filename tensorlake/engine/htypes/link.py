"""``link[image]``: a row holds a URL and a creds key (``tl.link``), not the image.

The row's stored shape is the linked image's, learnt at append time when the tensor
verifies its links or records companions (``engine/links/companions.py``); otherwise no
object is fetched and the shape is (0, 0, 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.htypes.base import (
    IMAGE_COMPRESSIONS,
    UINT8,
    UNSET,
    Encoded,
    Invalid,
    Pending,
    check_dtype,
    json_dumps,
)
from tensorlake.engine.htypes.image import ImageHtype
from tensorlake.engine.links.companions import link_check, needs_fetch
from tensorlake.engine.links.sample import LinkedSample

__all__ = ["LinkHtype"]


@dataclass(frozen=True, slots=True)
class LinkHtype(ImageHtype):
    sample_compression: object = UNSET
    compressions: tuple[str | None, ...] = IMAGE_COMPRESSIONS

    is_link: ClassVar[bool] = True
    raw_rows: ClassVar[bool] = False  # rows hold JSON, not pixels

    def prepare_batch(self, meta: TensorMeta, values: Any, pending: Pending) -> None:
        if len(values) > 1 and pending.links is not None and needs_fetch(meta.extra):
            pending.prefetched = pending.links.inspect_many(values, link_check(meta))

    def encode(self, meta: TensorMeta, value: Any, pending: Pending) -> Encoded:
        if value is None:  # an empty row: no link (reads as an empty image)
            if needs_fetch(meta.extra):
                pending.linked.append(None)
            return b"", (0, 0, 0)
        if not isinstance(value, LinkedSample):
            raise Invalid(
                f"a '{meta.htype}' tensor takes tl.link(url), got {type(value).__name__}. "
                "Use tl.link(path_or_url, creds_key=...)."
            )
        links = pending.links
        assert links is not None, "a link tensor's Pending carries the dataset's resolver"
        links.check_key(value.creds_key)
        shape: tuple[int, ...] = (0, 0, 3)  # unknown: the object is not fetched
        if needs_fetch(meta.extra):
            prefetched = pending.prefetched.pop(value, None)
            if isinstance(prefetched, Exception):
                raise prefetched
            found = prefetched or links.inspect(value, link_check(meta))
            pending.linked.append(found)
            shape = found.shape
        shape = self.check_shape(shape, pending)
        check_dtype(UINT8, pending)
        return json_dumps(value.to_json()), shape

    def decode(
        self,
        meta: TensorMeta,
        data: memoryview | bytes,
        shape: tuple[int, ...],
        out: np.ndarray | None = None,
    ) -> Any:
        return LinkedSample.from_stored(data)

    def sample_infos(self, values: Any, pending: Pending) -> list[dict[str, Any]]:
        """What ingest learnt of each object (format, size, shape, version), ``{}`` for
        an empty row."""
        return [{} if o is None else o.to_json() for o in pending.linked]
