"""htypes: one object per htype owning validation, defaults, encoding and decoding.

* :mod:`.base` - the ``Htype`` class (the generic array htype) and ``Pending``.
* :mod:`.image`, :mod:`.class_label`, :mod:`.bbox`, :mod:`.binary_mask`, :mod:`.scalar`
  (text, json), :mod:`.link` (``link[image]``) - the others, one module each.
* :mod:`.registry` - every htype by name (``get_htype``, ``register_htype``).
* :mod:`.codec` - one row's value <-> stored bytes, errors naming tensor and row.
* :mod:`.sample` - ``tl.read``: compressed files passed through without re-encoding.
"""

from tensorlake.engine.htypes.base import IMAGE_COMPRESSIONS, UNSET, Htype, Pending
from tensorlake.engine.htypes.codec import decode, encode
from tensorlake.engine.htypes.registry import HTYPES, get_htype, register_htype
from tensorlake.engine.htypes.sample import Sample, read

__all__ = [
    "HTYPES",
    "IMAGE_COMPRESSIONS",
    "UNSET",
    "Htype",
    "Pending",
    "Sample",
    "decode",
    "encode",
    "get_htype",
    "read",
    "register_htype",
]
