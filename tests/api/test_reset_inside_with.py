"""Issue 20's reported bug: reset inside ``with ds:``, then create, append, commit, reset
and update a row (Deep Lake's test of it)."""

from __future__ import annotations

import numpy as np

import tensorlake as tl


def test_reset_create_commit_reset_then_update_inside_with(storage_target):
    ds = tl.empty(storage_target.url, creds=storage_target.creds, overwrite=True)
    with ds:
        ds.create_tensor("abc")
        ds.abc.append(1)
        ds.reset()
        assert "abc" not in ds.tensors
        ds.create_tensor("abc")
        ds.abc.append(2)
        ds.commit()
        ds.reset()
        ds.abc[0] = 0
    np.testing.assert_array_equal(ds.abc.numpy().ravel(), [0])
    again = tl.load(storage_target.url, creds=storage_target.creds, read_only=True)
    np.testing.assert_array_equal(again.abc.numpy().ravel(), [0])
    assert len(again.commits) >= 1
