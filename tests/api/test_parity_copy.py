"""Deep Lake parity, copies: ds.copy, tl.copy, tl.deepcopy (with history), tl.like,
ds.create_tensor_like, ds.rechunk; on memory, local and S3."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

import tensorlake as tl
from tests.api.helpers import jpeg_bytes


def _new(target):
    ds = tl.empty(target.url, creds=target.creds, overwrite=True)
    with ds:
        ds.create_tensor("img", htype="image", sample_compression="jpeg")
        ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog"])
        ds.create_tensor("ann/boxes", htype="bbox", coords={"type": "pixel", "mode": "LTRB"})
        ds.info["source"] = "unit test"
        for i in range(6):
            ds.append(
                {
                    "img": tl.Sample(data=jpeg_bytes(8 + i, 9, seed=i)),
                    "labels": ["cat", "dog"][i % 2],
                    "ann/boxes": np.full((i % 3, 4), i, np.float32),
                }
            )
    ds.commit("six rows")
    return ds


def _dest(target, name: str) -> str:
    if target.kind == "memory":
        return f"mem://{name}-{uuid.uuid4().hex[:8]}"
    return target.url.rstrip("/") + f"-{name}"


def test_copy_of_a_view_keeps_meta_info_and_stored_bytes(storage_target):
    ds = _new(storage_target)
    dest = _dest(storage_target, "copy")
    out = ds[[4, 1, 3]].copy(dest, creds=storage_target.creds)
    assert len(out) == 3 and out.path == dest and not out.read_only
    assert [out.img[i].tobytes() for i in range(3)] == [ds.img[i].tobytes() for i in (4, 1, 3)]
    assert out.labels.data()["text"] == [["cat"], ["dog"], ["dog"]]
    assert out.labels.info.class_names == ["cat", "dog"]
    assert out["ann/boxes"].info.coords == {"type": "pixel", "mode": "LTRB"}
    assert [b.shape[0] for b in out["ann/boxes"].numpy(aslist=True)] == [1, 1, 0]
    assert out.info["source"] == "unit test"
    reopened = tl.load(dest, creds=storage_target.creds, read_only=True)
    assert reopened.img[0].tobytes() == ds.img[4].tobytes()
    assert reopened.commits == []  # a copy holds only a root commit, not listed
    with pytest.raises(tl.DatasetExistsError, match="overwrite=True"):
        ds.copy(dest, creds=storage_target.creds)
    some = ds.copy(dest, tensors=["labels", "ann"], overwrite=True, creds=storage_target.creds)
    assert sorted(some.tensors) == ["ann/boxes", "labels"] and len(some) == 6
    with pytest.raises(tl.TensorNotFoundError):
        ds.copy(dest, tensors=["nope"], overwrite=True, creds=storage_target.creds)


def test_tl_copy_of_a_path_and_of_a_group(storage_target):
    _new(storage_target).close()
    dest = _dest(storage_target, "tlcopy")
    out = tl.copy(
        storage_target.url, dest, src_creds=storage_target.creds, dest_creds=storage_target.creds
    )
    assert len(out) == 6 and out.img[5].numpy().shape == (13, 9, 3)
    ds = tl.load(storage_target.url, creds=storage_target.creds)
    group = ds.ann.copy(_dest(storage_target, "group"), creds=storage_target.creds)
    assert list(group.tensors) == ["boxes"] and len(group.boxes) == 6


def test_deepcopy_keeps_every_commit_and_branch(storage_target):
    ds = _new(storage_target)
    first = ds.commit_id
    ds.checkout("dev", create=True)
    ds.labels[0] = "dog"
    ds.commit("relabel")
    ds.checkout("main")
    ds.labels.append("cat")  # staged, uncommitted
    dest = _dest(storage_target, "deep")
    out = tl.deepcopy(ds, dest, dest_creds=storage_target.creds)
    assert sorted(out.branches) == ["dev", "main"]
    assert [c["commit"] for c in out.commits] == [c["commit"] for c in ds.commits]
    assert len(out.labels) == 7  # the staged row came along
    out.checkout("dev")
    assert out.labels.data()["text"][0] == ["dog"]
    past = tl.load(dest, creds=storage_target.creds, version=first)
    assert past.labels.data()["text"][0] == ["cat"]
    assert out.verify().ok
    with pytest.raises(tl.DatasetExistsError):
        tl.deepcopy(
            storage_target.url,
            dest,
            src_creds=storage_target.creds,
            dest_creds=storage_target.creds,
        )
    with pytest.raises(tl.DatasetArgumentError, match=r"tl\.copy"):
        tl.deepcopy(ds, dest, tensors=["labels"], overwrite=True, dest_creds=storage_target.creds)


def test_like_and_create_tensor_like(storage_target):
    ds = _new(storage_target)
    dest = _dest(storage_target, "like")
    empty = tl.like(dest, ds, creds=storage_target.creds)
    assert sorted(empty.tensors) == ["ann/boxes", "img", "labels"] and empty.max_len == 0
    assert (
        empty.labels.info.class_names == ["cat", "dog"] and empty.img.sample_compression == "jpeg"
    )
    assert empty.info["source"] == "unit test"
    empty.labels.append("dog")
    assert empty.labels.numpy().reshape(-1).tolist() == [1]
    made = ds.create_tensor_like("val_labels", ds.labels)
    assert (
        made.htype == "class_label" and made.info.class_names == ["cat", "dog"] and len(made) == 0
    )
    other = empty.create_tensor_like("ann/more", ds["ann/boxes"])  # from another dataset
    assert other.info.coords == {"type": "pixel", "mode": "LTRB"} and other.htype == "bbox"
    with pytest.raises(tl.DatasetError, match="already exists"):
        ds.create_tensor_like("labels", ds.labels)


def test_create_tensor_like_of_a_link_tensor(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg_bytes(10, 12))
    ds = tl.empty("mem://like-links", overwrite=True)
    ds.create_tensor("pics", htype="link[image]", sample_compression="jpeg")
    ds.pics.append(tl.link(str(path)))
    twin = ds.create_tensor_like("pics2", ds.pics)
    twin.append(tl.link(str(path)))
    assert twin[0].numpy().shape == (10, 12, 3) and twin.shape == (1, 10, 12, 3)
    hidden = [n for n in ds._tensor_names(include_hidden=True) if "pics2" in n]
    assert len(hidden) > 1  # its own companions
    plain = ds.create_tensor_like("pixels", ds.pics, unlink=True)
    assert plain.htype == "image"
    plain.append(ds.pics[0].numpy())
    assert plain[0].numpy().shape == (10, 12, 3)


def test_rechunk_rewrites_chunks_and_keeps_rows_and_history(storage_target):
    ds = tl.empty(storage_target.url, creds=storage_target.creds, overwrite=True)
    ds.create_tensor("x", dtype="int64", max_chunk_size=200)
    for i in range(40):
        ds.x.append(np.arange(i % 5 + 1))  # one flush per append: small chunks
    ds.pop(list(range(0, 40, 3)))
    first = ds.commit("fragmented")
    before = [v.tolist() for v in ds.x.numpy(aslist=True)]
    chunks_before = len(ds.x._engine.table)
    ds.x.meta.max_chunk_size = 10_000
    ds.rechunk()
    assert len(ds.x._engine.table) < chunks_before
    assert [v.tolist() for v in ds.x.numpy(aslist=True)] == before
    ds.commit("rechunked")
    ds.gc()
    assert ds.verify().ok
    old = tl.load(storage_target.url, creds=storage_target.creds, version=first)
    assert [v.tolist() for v in old.x.numpy(aslist=True)] == before
    with pytest.raises(tl.TensorNotFoundError):
        ds.rechunk("nope")
