"""A small dataset of every kind of row a loader reads."""

from __future__ import annotations

import numpy as np

import tensorlake as tl
from tests.api.helpers import jpeg_bytes

N = 23


def make(url: str, creds: dict | None = None, n: int = N, images: bool = True) -> tl.Dataset:
    """``n`` rows: 16x20 JPEG images (``images``), a label, 0-2 boxes, a text, a fixed
    vector; committed."""
    ds = tl.empty(url, creds=creds, overwrite=True)
    with ds:
        if images:
            ds.create_tensor("images", htype="image", sample_compression="jpeg")
        ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog", "eel"])
        ds.create_tensor("boxes", htype="bbox")
        ds.create_tensor("text", htype="text")
        ds.create_tensor("vec", dtype="float32")
        for i in range(n):
            row = {
                "labels": i % 3,
                "boxes": np.full((i % 3, 4), i, dtype=np.float32),
                "text": f"row {i}",
                "vec": np.full(3, i, dtype=np.float32),
            }
            if images:
                row["images"] = tl.Sample(data=jpeg_bytes(16, 20, seed=i))
            ds.append(row)
    ds.commit("rows")
    return ds


def check_row(batch: dict, k: int, ds: tl.Dataset) -> None:
    """Entry ``k`` of a numpy batch holds the row its index names."""
    i = int(batch["index"][k])
    assert int(np.asarray(batch["labels"][k]).reshape(-1)[0]) == i % 3
    np.testing.assert_array_equal(batch["vec"][k], np.full(3, i, dtype=np.float32))
    np.testing.assert_array_equal(batch["boxes"][k], np.full((i % 3, 4), i, dtype=np.float32))
    assert batch["text"][k] == f"row {i}"
    if "images" in batch:
        np.testing.assert_array_equal(np.asarray(batch["images"][k]), ds.images[i].numpy())
