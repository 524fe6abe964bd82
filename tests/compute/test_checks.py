"""The checks eval makes of its arguments: clear errors before anything changes."""

from __future__ import annotations

import pytest

import tensorlake as tl
from tests.compute.transforms import make_rows


def test_bad_arguments_are_clear_errors(tmp_path):
    ds = tl.empty("mem://compute-args", overwrite=True)
    with pytest.raises(tl.DatasetError, match="no tensors"):
        make_rows().eval(range(3), ds)
    ds.create_tensor("x", dtype="int64")
    with pytest.raises(TypeError, match="sized iterable"):
        make_rows().eval((i for i in range(3)), ds)
    with pytest.raises(ValueError, match="scheduler"):
        make_rows().eval(range(3), ds, num_workers=2, scheduler="spark")
    with pytest.raises(tl.DatasetError, match="view"):
        make_rows().eval(range(3), ds[0:1])
    with pytest.raises(TypeError, match="compose"):
        tl.compose([make_rows])
    with pytest.raises(tl.TransformError, match="index 0") as info:
        fail_on_missing().eval(range(2), ds, progressbar=False)
    assert "no tensor 'nope'" in str(info.value.__cause__)


@tl.compute
def fail_on_missing(i, sample_out):
    sample_out.nope.append(i)
