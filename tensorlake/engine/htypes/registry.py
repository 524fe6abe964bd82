"""Every htype by name: the built-in ones, and any a program registers.

docs/guide.md has the table of what each accepts and stores.
"""

from __future__ import annotations

from tensorlake.engine.htypes.base import Htype
from tensorlake.engine.htypes.bbox import BBoxHtype
from tensorlake.engine.htypes.binary_mask import BinaryMaskHtype
from tensorlake.engine.htypes.class_label import (
    ClassLabelHtype,
    InstanceLabelHtype,
    SegmentMaskHtype,
)
from tensorlake.engine.htypes.generic import GenericHtype
from tensorlake.engine.htypes.image import IMAGE_HTYPES
from tensorlake.engine.htypes.keypoints import KeypointsCocoHtype
from tensorlake.engine.htypes.link import LinkHtype
from tensorlake.engine.htypes.point import PointHtype
from tensorlake.engine.htypes.polygon import PolygonHtype
from tensorlake.engine.htypes.scalar import JsonHtype, ListHtype, TextHtype
from tensorlake.engine.htypes.sequence import SequenceHtype, sequence_of
from tensorlake.errors import HtypeError, UnknownHtypeError

__all__ = ["HTYPES", "get_htype", "register_htype"]

HTYPES: dict[str, Htype] = {
    h.name: h
    for h in (
        GenericHtype(),
        *IMAGE_HTYPES,
        ClassLabelHtype(),
        BBoxHtype(),
        BinaryMaskHtype(),
        SegmentMaskHtype(),
        InstanceLabelHtype(),
        KeypointsCocoHtype(),
        PointHtype(),
        PolygonHtype(),
        Htype("embedding", "float32", ndims=(1,)),
        Htype("intrinsics", "float32"),
        TextHtype(),
        JsonHtype(),
        ListHtype(),
        LinkHtype("link[image]"),
    )
}

_SEQUENCES: dict[str, SequenceHtype] = {}  # sequence[X], made on first use


def get_htype(name: str) -> Htype:
    """The htype called ``name`` (``sequence[X]`` for any X listed); ``UnknownHtypeError``
    (a ``ValueError``) if none is."""
    try:
        return HTYPES[name]
    except (KeyError, TypeError):
        pass
    if isinstance(name, str) and name.startswith("sequence"):
        return _sequence(name)
    raise UnknownHtypeError(
        f"Unknown htype {name!r}. Valid htypes: {', '.join(sorted(HTYPES))}, and "
        "sequence[<htype>] of those."
    )


def _sequence(name: str) -> SequenceHtype:
    found = _SEQUENCES.get(name)
    if found is not None:
        return found
    inner_name = name[len("sequence") :]
    if inner_name in ("", "[]"):
        inner_name = "[generic]"
    if not (inner_name.startswith("[") and inner_name.endswith("]")):
        raise UnknownHtypeError(
            f"Unknown htype {name!r}: a sequence htype is written sequence[<htype>], "
            "e.g. 'sequence[image]'."
        )
    htype = sequence_of(get_htype(inner_name[1:-1]))
    _SEQUENCES[name] = htype
    return htype


def register_htype(htype: Htype, replace: bool = False) -> None:
    """Make ``htype`` available to ``create_tensor(htype=htype.name)``.

    A dataset stores the htype's name only: every process that opens it must register
    the same htype first.
    """
    if not isinstance(htype, Htype):
        raise HtypeError(f"register_htype() takes an Htype, got {type(htype).__name__}.")
    if htype.name in HTYPES and not replace:
        raise HtypeError(f"htype '{htype.name}' exists already; pass replace=True to replace it.")
    HTYPES[htype.name] = htype
    _SEQUENCES.clear()  # sequences of a replaced htype are made again
