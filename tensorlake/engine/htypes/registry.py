"""Every htype by name: the built-in ones, and any a program registers.

docs/guide.md has the table of what each accepts and stores.
"""

from __future__ import annotations

from tensorlake.engine.htypes.base import Htype
from tensorlake.engine.htypes.bbox import BBoxHtype
from tensorlake.engine.htypes.binary_mask import BinaryMaskHtype
from tensorlake.engine.htypes.class_label import ClassLabelHtype
from tensorlake.engine.htypes.image import IMAGE_HTYPES
from tensorlake.engine.htypes.keypoints import KeypointsCocoHtype
from tensorlake.engine.htypes.link import LinkHtype
from tensorlake.engine.htypes.scalar import JsonHtype, TextHtype
from tensorlake.errors import HtypeError, UnknownHtypeError

__all__ = ["HTYPES", "get_htype", "register_htype"]

HTYPES: dict[str, Htype] = {
    h.name: h
    for h in (
        Htype("generic"),
        *IMAGE_HTYPES,
        ClassLabelHtype(),
        BBoxHtype(),
        BinaryMaskHtype(),
        KeypointsCocoHtype(),
        Htype("embedding", "float32", ndims=(1,)),
        TextHtype(),
        JsonHtype(),
        LinkHtype("link[image]"),
    )
}


def get_htype(name: str) -> Htype:
    """The htype called ``name``; ``UnknownHtypeError`` (a ``ValueError``) if none is."""
    try:
        return HTYPES[name]
    except (KeyError, TypeError):
        raise UnknownHtypeError(
            f"Unknown htype {name!r}. Valid htypes: {', '.join(sorted(HTYPES))}."
        ) from None


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
