"""htypes are objects in a registry: lookup, registration, and a custom htype end to end."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.engine.htypes import HTYPES, Htype, get_htype, register_htype
from tensorlake.engine.htypes.base import Invalid


def test_every_builtin_htype_is_an_object_with_its_rules():
    assert {"generic", "image", "class_label", "bbox", "binary_mask", "text", "json"} <= set(HTYPES)
    assert get_htype("text").scalar and get_htype("json").scalar
    assert not get_htype("image").scalar
    assert get_htype("link[image]").is_link and not get_htype("image").is_link
    assert get_htype("bbox").info_from_args({}) == {"coords": {"type": "pixel", "mode": "LTWH"}}
    with pytest.raises(tl.UnknownHtypeError, match="Valid htypes"):
        get_htype("imgae")
    with pytest.raises(tl.UnknownHtypeError):
        get_htype(None)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class _Point(Htype):
    """2-D points of shape (N, 2), float32: what a new htype needs to say."""

    dtype: str | None = "float32"
    ndims: tuple[int, ...] | None = (2,)

    def normalize(self, arr: np.ndarray) -> np.ndarray:
        return arr.reshape(1, 2) if arr.shape == (2,) else arr

    def check_rank(self, shape: tuple[int, ...]) -> None:
        Htype.check_rank(self, shape)
        if shape[1] != 2:
            raise Invalid(f"expected points of shape (N, 2), got {shape}.")


def test_a_registered_htype_works_end_to_end():
    register_htype(_Point("test_point"))
    try:
        with pytest.raises(tl.HtypeError, match="exists already"):
            register_htype(_Point("test_point"))
        ds = tl.empty("mem://points", overwrite=True)
        ds.create_tensor("pts", htype="test_point")
        ds.pts.append([3, 4])
        ds.pts.append(np.zeros((3, 2)))
        with pytest.raises(tl.SampleError, match=r"shape \(N, 2\)") as info:
            ds.pts.append(np.zeros((2, 3)))
        assert info.value.index == 2
        assert ds.pts[0].numpy().tolist() == [[3.0, 4.0]]
        assert ds.pts.dtype == np.float32 and len(ds.pts) == 2
    finally:
        del HTYPES["test_point"]
    with pytest.raises(tl.HtypeError):
        register_htype("point")  # type: ignore[arg-type]
