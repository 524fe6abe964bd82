"""Every htype written and read back, on memory, local disk and S3, and from a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tensorlake as tl
from tests.api.helpers import assert_rows_equal, create_all_htypes, jpeg_bytes, ragged_rows


def test_every_htype_round_trips(storage_target):
    rows = ragged_rows()
    ds = tl.empty(storage_target.url, creds=storage_target.creds)
    with ds:
        create_all_htypes(ds)
        ds.extend(rows)
    assert len(ds) == 6
    assert_rows_equal(ds, rows)
    reopened = tl.load(storage_target.url, creds=storage_target.creds)
    assert_rows_equal(reopened, rows)
    assert reopened.labels.info.class_names == ["a", "b", "c"]
    assert reopened.boxes.info.coords == {"type": "pixel", "mode": "LTWH"}


def test_reopen_in_fresh_process(storage_target):
    if storage_target.kind == "memory":
        pytest.skip("memory datasets live in one process")
    rows = ragged_rows(seed=3)
    ds = tl.empty(storage_target.url, creds=storage_target.creds)
    with ds:
        create_all_htypes(ds)
        for i in range(len(rows["text"])):
            ds.append({k: v[i] for k, v in rows.items()})
    script = textwrap.dedent(
        f"""
        import json, sys, numpy as np, tensorlake as tl
        ds = tl.load({storage_target.url!r}, creds={storage_target.creds!r}, read_only=True)
        out = {{}}
        for name, t in ds.tensors.items():
            vals = t.numpy(aslist=True)
            out[name] = [v if isinstance(v, (str, dict)) else np.asarray(v).tolist() for v in vals]
        json.dump(out, sys.stdout)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    for name, values in rows.items():
        expected = [v if isinstance(v, (str, dict)) else np.asarray(v).tolist() for v in values]
        assert got[name] == expected, name


def test_jpeg_bytes_pass_through_unchanged(storage_target, tmp_path):
    data = jpeg_bytes(48, 64, seed=1)
    path = tmp_path / "a.jpg"
    path.write_bytes(data)
    ds = tl.empty(storage_target.url, creds=storage_target.creds)
    ds.create_tensor("images", htype="image", sample_compression="jpg")
    ds.images.append(tl.read(path))
    ds.images.append(tl.read(str(path)))
    assert ds.images[0].tobytes() == data
    assert ds.images[1].tobytes() == data
    assert ds.images[0].numpy().shape == (48, 64, 3)
    assert ds.images.shape == (2, 48, 64, 3)
    batch = ds.images.numpy()
    assert batch.shape == (2, 48, 64, 3) and batch.dtype == np.uint8
    np.testing.assert_array_equal(batch[0], ds.images[0].numpy())


def test_png_sample_into_jpeg_tensor_is_recompressed(tmp_path):
    from PIL import Image

    arr = np.full((20, 30, 3), 77, dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    ds = tl.empty("mem://recompress", overwrite=True)
    ds.create_tensor("images", htype="image", sample_compression="jpeg")
    ds.images.append(tl.read(tmp_path / "a.png"))
    assert ds.images[0].tobytes()[:2] == b"\xff\xd8"
    assert np.abs(ds.images[0].numpy().astype(int) - 77).max() <= 3


def test_class_label_text_is_mapped_and_names_appended():
    ds = tl.empty("mem://labels", overwrite=True)
    ds.create_tensor("labels", htype="class_label", class_names=["cat"])
    ds.labels.append("dog")
    ds.labels.append(["cat", "bird"])
    ds.labels.append(0)
    assert ds.labels.info.class_names == ["cat", "dog", "bird"]
    assert ds.labels.numpy(aslist=True)[1].tolist() == [0, 2]
    assert ds.labels[0].data() == {"value": np.array([1], dtype=np.uint32), "text": ["dog"]}
    assert ds.labels[1].data()["text"] == ["cat", "bird"]


def test_generic_dtype_fixed_by_first_sample_or_argument():
    ds = tl.empty("mem://dtypes", overwrite=True)
    ds.create_tensor("a")
    ds.a.append(np.array([1, 2], dtype=np.int16))
    ds.a.append([3, 4])
    assert ds.a.numpy().dtype == np.int16
    ds.create_tensor("b", dtype="float32")
    ds.b.append([1, 2])
    assert ds.b.numpy().dtype == np.float32


def test_bool_scalars_and_arrays_read_back():
    ds = tl.empty("mem://bools", overwrite=True)
    ds.create_tensor("flag", dtype="bool")
    ds.flag.extend([True, False, True])
    ds.create_tensor("bits", dtype="bool")
    ds.bits.extend([np.array([True, False]), np.array([False, False])])
    assert ds.flag.numpy().tolist() == [[True], [False], [True]]  # scalars: (N, 1)
    assert ds.flag[1].numpy().item() is False
    assert ds.bits.numpy().tolist() == [[True, False], [False, False]]


def test_text_and_json_accessors():
    ds = tl.empty("mem://textjson", overwrite=True)
    ds.create_tensor("t", htype="text")
    ds.create_tensor("j", htype="json")
    ds.append({"t": "hello", "j": {"a": [1, 2]}})
    ds.append({"t": "world", "j": [1, "x"]})
    assert ds.t[0].text() == "hello"
    assert ds.t.text() == ["hello", "world"]
    assert ds.t[0].numpy().tolist() == ["hello"]
    assert ds.t.numpy().shape == (2, 1)
    assert ds.j[0].dict() == {"a": [1, 2]}
    assert ds.j[1].data() == {"value": [1, "x"]}


def test_groups():
    ds = tl.empty("mem://groups", overwrite=True)
    ds.create_tensor("labels/boxes", htype="bbox")
    grp = ds.create_group("labels", exist_ok=True)
    grp.create_tensor("ids", htype="class_label")
    ds.labels.append({"boxes": [[1, 2, 3, 4]], "ids": [1]})
    assert list(ds.groups) == ["labels"]
    assert sorted(ds.labels.tensors) == ["boxes", "ids"]
    assert ds["labels/boxes"][0].numpy().tolist() == [[1, 2, 3, 4]]
    assert ds.labels.ids.numpy().tolist() == [[1]]
    with pytest.raises(tl.DatasetError):
        ds.create_tensor("labels/boxes/x")


def test_chunk_boundaries_and_tiles(storage_target):
    """Rows spread over many small chunks, and samples larger than a chunk, read back whole."""
    ds = tl.empty(storage_target.url, creds=storage_target.creds)
    ds.create_tensor("x", dtype="uint8", max_chunk_size=1000)
    rng = np.random.default_rng(0)
    values = [
        rng.integers(0, 255, size, dtype=np.uint8)
        for size in (10, 600, 2500, 3, 999, 1001, 7000, 5)
    ]
    with ds:
        ds.x.extend(values)
    for t in (ds, tl.load(storage_target.url, creds=storage_target.creds)):
        got = t.x.numpy(aslist=True)
        assert [g.tolist() for g in got] == [v.tolist() for v in values]
        for i in (6, 2, 7, 0):  # single-row (ranged) reads, tiles included
            assert t.x[i].numpy().tolist() == values[i].tolist()
        assert t.x[6].shape == (7000,)


def test_many_rows_many_chunks_sequential_and_random():
    ds = tl.empty("mem://many", overwrite=True)
    ds.create_tensor("x", dtype="int64", max_chunk_size=4096)
    with ds:
        ds.x.extend(np.arange(20_000).reshape(-1, 1))
    np.testing.assert_array_equal(ds.x.numpy()[:, 0], np.arange(20_000))
    rng = np.random.default_rng(1)
    rows = rng.integers(0, 20_000, 50)
    np.testing.assert_array_equal(ds.x[rows.tolist()].numpy()[:, 0], rows)
    for r in rows[:10]:
        assert ds.x[int(r)].numpy()[0] == r


def test_one_array_given_for_many_rows_stores_each_row_and_is_read_at_each_append():
    """An array repeated in one extend is encoded once (ingests share label rows); an
    array changed between appends is stored as it is at each."""
    ds = tl.empty("mem://repeated-arrays", overwrite=True)
    ds.create_tensor("x", dtype="int64")
    ds.create_tensor("labels", htype="class_label", class_names=["a", "b"])
    row, label = np.arange(3), np.array([1], dtype=np.uint32)
    ds.extend({"x": [row, row, row], "labels": [label, label, label]})
    row[0] = 7
    ds.append({"x": row, "labels": label})
    np.testing.assert_array_equal(ds.x.numpy(), [[0, 1, 2]] * 3 + [[7, 1, 2]])
    assert ds.labels.numpy().ravel().tolist() == [1, 1, 1, 1]
    with pytest.raises(tl.SampleError):  # a bad repeated array is still refused
        ds.extend({"x": [row, np.zeros((2, 2))], "labels": [label, label]})
    assert len(ds) == 4
