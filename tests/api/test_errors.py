"""Bad input is refused before anything changes; read-only means read-only; corruption is loud."""

from __future__ import annotations

import numpy as np
import pytest

import tensorlake as tl
from tests.api.helpers import create_all_htypes, ragged_rows

# None is not here: it is an empty row for every htype, as in Deep Lake
# (tests/engine/htypes/test_empty_rows.py)
BAD = {
    "generic": ["text", [[1, 2], [3]]],
    "images": [np.zeros((4, 4, 2), np.uint8), np.zeros(5, np.uint8), np.full((3, 3, 3), 1.5), "x"],
    "labels": [-1, [1.5], ["a", 1], {"a": 1}],
    "boxes": [[1, 2, 3], np.zeros((2, 5)), "box"],
    "masks": [np.full((3, 3, 1), 2), np.zeros(4, bool), "m"],
    "emb": [np.zeros((2, 2)), "e"],
    "text": [3, ["a", "b"]],
    "meta": [object(), {1, 2}],
}


@pytest.mark.parametrize("tensor,bad", [(t, b) for t, bads in BAD.items() for b in bads])
def test_bad_samples_raise_and_change_nothing(tensor, bad):
    rows = ragged_rows(n=2)
    ds = tl.empty("mem://bad", overwrite=True)
    with ds:
        create_all_htypes(ds)
        ds.extend(rows)
    row = {k: v[0] for k, v in rows.items()}
    row[tensor] = bad
    with pytest.raises(tl.SampleError) as info:
        ds.append(row)
    assert info.value.tensor == tensor and info.value.index == 2
    assert f"tensor '{tensor}', row 2" in str(info.value)
    assert len(ds) == 2 and ds.max_len == 2
    assert ds.labels.info.class_names == ["a", "b", "c"]
    reloaded = tl.load("mem://bad")
    assert reloaded.max_len == 2


def test_extend_is_all_or_nothing_across_rows():
    ds = tl.empty("mem://batch", overwrite=True)
    ds.create_tensor("labels", htype="class_label")
    with pytest.raises(tl.SampleError):
        ds.labels.extend(["new", "other", -5])
    assert len(ds.labels) == 0 and ds.labels.info.class_names == []


def test_missing_tensor_values_need_skip_ok():
    ds = tl.empty("mem://skip", overwrite=True)
    ds.create_tensor("a")
    ds.create_tensor("b")
    with pytest.raises(tl.SampleError, match="skip_ok"):
        ds.append({"a": 1})
    ds.append({"a": 1}, skip_ok=True)
    assert (ds.min_len, ds.max_len) == (0, 1)
    with pytest.raises(tl.TensorNotFoundError):
        ds.append({"c": 1})
    with pytest.raises(tl.SampleError, match="same number"):
        ds.extend({"a": [1, 2], "b": [1]})


def test_schema_errors():
    ds = tl.empty("mem://schema", overwrite=True)
    with pytest.raises(ValueError, match="sample_compression"):
        ds.create_tensor("img", htype="image")
    with pytest.raises(ValueError, match="Unknown htype"):
        ds.create_tensor("x", htype="imgae")
    with pytest.raises(TypeError, match="class_names"):
        ds.create_tensor("b", htype="bbox", class_names=["a"])
    with pytest.raises(ValueError, match="Invalid tensor"):
        ds.create_tensor("bad name")
    ds.create_tensor("x")
    with pytest.raises(tl.DatasetError, match="exist_ok"):
        ds.create_tensor("x")
    assert ds.create_tensor("x", exist_ok=True).key == "x"
    with pytest.raises(AttributeError, match="tensor 'nope'"):
        _ = ds.nope


def test_read_only(storage_target):
    ds = tl.empty(storage_target.url, creds=storage_target.creds)
    ds.create_tensor("x")
    ds.x.append([1, 2])
    ro = tl.load(storage_target.url, creds=storage_target.creds, read_only=True)
    assert ro.read_only
    for op in (
        lambda: ro.x.append([3]),
        lambda: ro.create_tensor("y"),
        lambda: ro.x.__setitem__(0, [5, 5]),
        lambda: ro.append({"x": [1]}),
        lambda: ro.info.update(a=1),
        lambda: ro.delete_tensor("x"),
    ):
        with pytest.raises(tl.ReadOnlyError):
            op()
    assert ro.x.numpy().tolist() == [[1, 2]]


def test_missing_and_existing_datasets(tmp_path):
    with pytest.raises(tl.DatasetNotFoundError):
        tl.load(tmp_path / "nothing")
    tl.empty(tmp_path / "ds")
    with pytest.raises(tl.DatasetExistsError):
        tl.empty(tmp_path / "ds")
    assert tl.exists(tmp_path / "ds") and not tl.exists(tmp_path / "nothing")
    assert len(tl.dataset(tmp_path / "ds").tensors) == 0
    tl.delete(tmp_path / "ds")
    assert not tl.exists(tmp_path / "ds")


def _chunk_keys(storage):
    return [k for k in storage.list("tensors/") if "/chunks/" in k]


@pytest.mark.parametrize("where", ["payload", "header", "truncate"])
def test_corrupt_chunk_raises_format_error(tmp_path, where):
    from tensorlake.storage import LocalStorage

    path = tmp_path / "ds"
    ds = tl.empty(path)
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.x.extend([np.arange(100) + i for i in range(10)])
    storage = LocalStorage(path)
    (key,) = _chunk_keys(storage)
    data = bytearray(storage.get(key))
    if where == "payload":
        data[-50] ^= 0xFF
    elif where == "header":
        data[20] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    storage.put(key, bytes(data))
    fresh = tl.load(path, read_only=True)
    with pytest.raises(tl.FormatError):
        fresh.x.numpy()
    fresh = tl.load(path, read_only=True)
    with pytest.raises(tl.FormatError):
        fresh.x[9].numpy()  # a single ranged row read is verified too


def test_missing_chunk_is_a_format_error(tmp_path):
    from tensorlake.storage import LocalStorage

    ds = tl.empty(tmp_path / "ds")
    ds.create_tensor("x")
    ds.x.append([1])
    storage = LocalStorage(tmp_path / "ds")
    storage.delete(_chunk_keys(storage)[0])
    with pytest.raises(tl.FormatError, match="missing"):
        tl.load(tmp_path / "ds").x.numpy()


def test_newer_format_is_refused(tmp_path):
    import json

    tl.empty(tmp_path / "ds")
    meta_path = tmp_path / "ds" / "tensorlake.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = "99.0"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(tl.FormatError, match="Upgrade tensorlake"):
        tl.load(tmp_path / "ds")


def test_corrupt_chunk_of_small_rows_fails_the_vectorised_read(tmp_path):
    from tensorlake.storage import LocalStorage

    ds = tl.empty(tmp_path / "ds")
    with ds:
        ds.create_tensor("ids", dtype="int64")
        ds.ids.extend(np.arange(1000).reshape(-1, 1))
    np.testing.assert_array_equal(tl.load(tmp_path / "ds").ids.numpy()[:, 0], np.arange(1000))
    storage = LocalStorage(tmp_path / "ds")
    (key,) = _chunk_keys(storage)
    data = bytearray(storage.get(key))
    data[-100] ^= 0x01
    storage.put(key, bytes(data))
    with pytest.raises(tl.FormatError, match="checksum"):
        tl.load(tmp_path / "ds", read_only=True).ids.numpy()


def test_unreadable_or_broken_files_are_sample_errors(tmp_path):
    ds = tl.empty("mem://files", overwrite=True)
    ds.create_tensor("images", htype="image", sample_compression="jpeg")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 20)
    for sample in (tl.read(broken), tl.read(tmp_path / "missing.jpg")):
        with pytest.raises(tl.SampleError, match="tensor 'images', row 0"):
            ds.images.append(sample)
    assert len(ds.images) == 0


def test_each_error_case_has_its_own_type():
    """Every case raises a typed error under TensorlakeError, still catchable as the
    builtin that callers used to catch."""
    ds = tl.empty("mem://typed", overwrite=True)
    cases = [
        (lambda: ds.create_tensor("x", htype="imgae"), tl.UnknownHtypeError, ValueError),
        (lambda: ds.create_tensor("img", htype="image"), tl.HtypeError, ValueError),
        (
            lambda: ds.create_tensor("b", htype="bbox", class_names=["a"]),
            tl.HtypeArgumentError,
            TypeError,
        ),
        (
            lambda: ds.create_tensor("b", htype="bbox", coords={"mode": "XYXY"}),
            tl.HtypeError,
            ValueError,
        ),
        (
            lambda: ds.create_tensor("c", htype="class_label", dtype="int8"),
            tl.HtypeError,
            ValueError,
        ),
        (lambda: ds.create_tensor("bad name"), tl.InvalidNameError, ValueError),
        (lambda: ds.create_tensor("a//b"), tl.InvalidNameError, ValueError),
        (lambda: tl.link("ftp://host/x.jpg"), tl.LinkError, ValueError),
    ]
    for make, kind, builtin in cases:
        with pytest.raises(kind) as info:
            make()
        assert isinstance(info.value, builtin) and isinstance(info.value, tl.TensorlakeError)
    ds.create_tensor("x")
    ds.x.extend([[1], [2]])
    for index in (5, [0, 7], np.ones(3, bool)):
        with pytest.raises(tl.InvalidIndexError) as info:
            ds.x[index]
        assert isinstance(info.value, IndexError)
    assert ds.x.numpy().tolist() == [[1], [2]]


def test_a_write_at_a_past_commit_is_a_version_error():
    ds = tl.empty("mem://past", overwrite=True)
    ds.create_tensor("x")
    ds.x.append([1])
    first = ds.commit("one")
    ds.x.append([2])
    ds.commit("two")
    ds.checkout(first)
    for op in (lambda: ds.x.append([3]), lambda: ds.reset(), lambda: ds.create_tensor("y")):
        with pytest.raises(tl.PastVersionError) as info:
            op()
        assert isinstance(info.value, tl.VersionError) and isinstance(info.value, tl.ReadOnlyError)
    assert ds.x.numpy().tolist() == [[1]]
