"""A few rows of a large chunk are read by range, not by fetching the chunk."""

from __future__ import annotations

import numpy as np

import tensorlake as tl
from tensorlake.api.dataset import core_of


def test_a_few_rows_of_a_large_chunk_are_ranged_reads(tmp_path):
    ds = tl.empty(tmp_path / "ds")
    with ds:
        ds.create_tensor("x", dtype="float32")
        ds.x.extend(np.arange(1_000_000, dtype=np.float32).reshape(-1, 1))  # one 4 MB chunk
    ds.commit("rows")
    ds = tl.load(tmp_path / "ds", read_only=True)
    storage = core_of(ds).storage
    whole, ranged = [], []
    real_get_many, real_get_ranges = storage.get_many, storage.get_ranges

    def get_many(keys):
        keys = list(keys)
        whole.extend(k for k in keys if "/chunks/" in k)
        return real_get_many(keys)

    def get_ranges(requests):
        ranged.extend(requests)
        return real_get_ranges(requests)

    storage.get_many, storage.get_ranges = get_many, get_ranges
    np.testing.assert_array_equal(ds.x[10:14].numpy().ravel(), [10, 11, 12, 13])
    assert [v.ravel().tolist() for v in ds.x[999_998:].numpy(aslist=True)] == [[999_998], [999_999]]
    assert whole == [] and sum(end - start for _, start, end in ranged) < 300_000
    np.testing.assert_array_equal(ds.x.numpy()[::250_000].ravel(), [0, 250_000, 500_000, 750_000])
    assert len(whole) == 1  # all rows: the chunk, whole
