"""Sample data shared by the API tests."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def jpeg_bytes(h: int, w: int, seed: int = 0, quality: int = 90) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    arr = np.stack([(x * 255 // max(w, 1)), (y * 255 // max(h, 1)), np.full_like(x, 128)], -1)
    arr = (arr + rng.integers(0, 20, arr.shape)).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def ragged_rows(seed: int = 0, n: int = 6) -> dict[str, list]:
    """One value per htype per row, with shapes that change from row to row."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {
        k: [] for k in ("generic", "images", "labels", "boxes", "masks", "emb", "text", "meta")
    }
    for i in range(n):
        k = i % 3 + 1
        rows["generic"].append(rng.normal(size=(i + 1, 2)).astype(np.float64))
        rows["images"].append(rng.integers(0, 255, (8 + i, 10 + 2 * i, 3), dtype=np.uint8))
        rows["labels"].append(np.arange(k, dtype=np.uint32))
        rows["boxes"].append(rng.uniform(0, 100, (k, 4)).astype(np.float32))
        rows["masks"].append(rng.random((6 + i, 5, k)) > 0.5)
        rows["emb"].append(rng.normal(size=16).astype(np.float32))
        rows["text"].append(f"row {i} — ünïcode")
        rows["meta"].append({"id": i, "tags": ["a", "b"][: i % 3], "nested": {"x": i / 2}})
    return rows


def create_all_htypes(ds) -> None:
    ds.create_tensor("generic")
    ds.create_tensor("images", htype="image", sample_compression="png")
    ds.create_tensor("labels", htype="class_label", class_names=["a", "b", "c"])
    ds.create_tensor("boxes", htype="bbox")
    ds.create_tensor("masks", htype="binary_mask")
    ds.create_tensor("emb", htype="embedding")
    ds.create_tensor("text", htype="text")
    ds.create_tensor("meta", htype="json")


def assert_rows_equal(ds, rows: dict[str, list]) -> None:
    for name, values in rows.items():
        got = ds[name].numpy(aslist=True)
        assert len(got) == len(values), name
        for i, (g, v) in enumerate(zip(got, values)):
            if name in ("text", "meta"):
                assert g == v, (name, i)
            else:
                np.testing.assert_array_equal(g, v, err_msg=f"{name}[{i}]")
                assert np.asarray(g).dtype == np.asarray(v).dtype, (name, g.dtype, v.dtype)
