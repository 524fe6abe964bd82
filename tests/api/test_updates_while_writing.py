"""Reading rows whose chunk this process is still writing (inside ``with ds:``, where
chunk puts go on in the background) gives the new values, never a missing chunk."""

from __future__ import annotations

import numpy as np

import tensorlake as tl


def test_updates_of_rows_of_one_chunk_in_a_batch(storage_target):
    ds = tl.empty(storage_target.url, creds=storage_target.creds)
    with ds:
        ds.create_tensor("img")
        ds.img.extend(np.ones((10, 100, 100, 3)))
        ds.commit("ones")
        for i in range(4):  # each update rewrites the chunk the next one reads
            ds.img[i] = ds.img[i].numpy() * (i + 2)
        ds.img[9] *= 5
        got = [float(ds.img[i].numpy().max()) for i in range(10)]
    assert got == [2.0, 3.0, 4.0, 5.0, 1.0, 1.0, 1.0, 1.0, 1.0, 5.0]
    again = tl.load(storage_target.url, creds=storage_target.creds, read_only=True)
    assert [float(again.img[i].numpy().max()) for i in range(10)] == got
