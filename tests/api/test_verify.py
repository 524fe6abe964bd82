"""``ds.verify()``: a healthy dataset is ok; each kind of damage is reported by its key."""

from __future__ import annotations

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.engine.format import keys, records
from tensorlake.engine.format.chunk import Chunk
from tensorlake.engine.format.packing import pack, unpack
from tensorlake.storage import from_url
from tests.api.helpers import jpeg_bytes


def _healthy(target):
    """Three commits and a branch, a staged change, a tiled sample, an lz4 tensor, and a
    tensor of many small rows (chunks with one payload CRC)."""
    ds = tl.empty(target.url, creds=target.creds, overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int64", max_chunk_size=2000)  # ragged rows
        ds.create_tensor("small", htype="text")
        ds.create_tensor("packed", dtype="uint8", chunk_compression="lz4")
        ds.extend(
            {
                "x": [np.arange(50 + i % 3) for i in range(100)],
                "small": [f"row {i}" for i in range(100)],
                "packed": [np.full(100, i, np.uint8) for i in range(100)],
            }
        )
    ds.commit("first")
    ds.checkout("dev", create=True)
    with ds:
        ds.x.append(np.arange(1000))  # 8000 bytes: tiles of 2000
        ds.small.append("big")
        ds.packed.append(np.zeros(10, np.uint8))
    ds.commit("tiled")
    ds.checkout("main")
    ds.small[3] = "updated"  # staged, not committed
    return ds


def _chunk_keys(storage, tensor):
    return sorted(storage.list(keys.chunk_prefix(tensor)))


def test_a_healthy_dataset_verifies_ok(storage_target):
    ds = _healthy(storage_target)
    ds.gc()  # every chunk left is named by some version
    storage = storage_target.open(read_only=True)
    chunks = [k for k in storage.list(keys.TENSORS_PREFIX) if keys.is_chunk_key(k)]
    report = ds.verify()
    assert report.ok, str(report)
    assert report.problems == ()
    assert report.commits == 3  # root, first, tiled
    assert report.staging == 1
    assert report.segments == len(list(storage.list(keys.SEGMENTS_PREFIX)))
    assert report.chunks == len(chunks) > 10
    assert report.bytes == sum(storage.info(k).size for k in chunks)
    assert report.links is None
    assert str(report).startswith(f"{ds.path}: ok (checked 3 commits, 1 staging manifest")
    report.raise_if_damaged()  # does nothing
    reopened = tl.load(storage_target.url, creds=storage_target.creds, read_only=True)
    assert reopened.verify().to_dict() == report.to_dict()


def _damage(data: bytes, how: str) -> bytes | None:
    if how == "flip-payload":
        return data[:-3] + bytes([data[-3] ^ 0x01]) + data[-2:]
    if how == "flip-header":
        return data[:20] + bytes([data[20] ^ 0x01]) + data[21:]
    if how == "truncate":
        return data[: len(data) - 7]
    if how == "extend":
        return data + b"\0"
    return None  # delete


@pytest.mark.parametrize(
    ("tensor", "how", "message"),
    [
        ("x", "flip-payload", "checksum mismatch"),
        ("small", "flip-payload", "checksum mismatch"),  # the payload's one CRC
        ("packed", "flip-payload", "corrupt"),  # lz4 over the whole payload
        ("x", "flip-header", "corrupt header"),
        ("x", "truncate", "truncated"),
        ("x", "extend", "longer than recorded"),
        ("x", "delete", "missing (a chunk of tensor 'x'"),
    ],
)
def test_a_damaged_chunk_is_reported_by_its_key(storage_target, tensor, how, message):
    ds = _healthy(storage_target)
    storage = storage_target.open()
    victim = max(_chunk_keys(storage, tensor), key=lambda k: storage.info(k).size)
    if tensor == "small":  # many small rows: the chunk has one CRC of its payload
        assert Chunk(storage.get(victim), victim).header.payload_crc is not None
    damaged = _damage(storage.get(victim), how)
    if damaged is None:
        storage.delete(victim)
    else:
        storage.put(victim, damaged)
    report = ds.verify()
    assert not report.ok
    assert [p.key for p in report.problems] == [victim], str(report)
    assert message in report.problems[0].message
    assert f"  {victim}: " in str(report) and "DAMAGED, 1 problem" in str(report)
    with pytest.raises(tl.FormatError, match="is damaged") as caught:
        report.raise_if_damaged()
    assert caught.value.key == victim


def test_a_chunk_of_few_rows_is_checked_row_by_row(tmp_path):
    """A chunk without a payload CRC (64 rows or fewer) is checked row by row."""
    ds = tl.empty(tmp_path / "ds")
    ds.create_tensor("x", dtype="uint8")
    ds.x.extend([np.full(10 + i, i, np.uint8) for i in range(3)])  # ragged: a CRC per row
    storage = from_url(str(tmp_path / "ds"))
    (victim,) = _chunk_keys(storage, "x")
    data = bytearray(storage.get(victim))
    data[-15] ^= 0x10  # payload byte 18 of 33: inside row 1 (bytes 10-20)
    storage.put(victim, bytes(data))
    (problem,) = ds.verify().problems
    assert problem.key == victim and "Row 1 of chunk is corrupt" in problem.message


@pytest.mark.parametrize("how", ["garbage", "changed", "delete"])
def test_a_damaged_table_segment_is_reported_by_its_key(storage_target, how):
    ds = _healthy(storage_target)
    storage = storage_target.open()
    head = records.read_commit(storage, records.read_head(storage, "dev"))
    segment = head.manifest["tensors"][0]["segments"][-1]
    if how == "delete":
        storage.delete(segment)
    elif how == "garbage":
        storage.put(segment, b"\xc1 not msgpack")
    else:  # still a table, but not the one its hash names
        storage.put(segment, storage.get(segment)[:-1] + b"\x01")
    report = ds.verify()
    assert [p.key for p in report.problems] == [segment], str(report)
    expected = {"delete": "missing", "garbage": "does not match", "changed": "does not match"}
    assert expected[how] in report.problems[0].message


def test_damaged_manifests_are_reported_by_their_keys(storage_target):
    ds = _healthy(storage_target)
    storage = storage_target.open()
    dev_head = records.read_head(storage, "dev")
    dev_commit = keys.commit_key(dev_head)
    storage.put(dev_commit, b"\xc1\xc1\xc1")  # not msgpack
    staging = keys.staging_key("main")
    storage.put(staging, pack({"manifest": {}}))  # decodes, but names no base
    report = ds.verify()
    found = {p.key: p.message for p in report.problems}
    assert set(found) == {dev_commit, staging}, str(report)
    assert "cannot be decoded" in found[dev_commit]
    assert "malformed" in found[staging]


def test_a_missing_commit_is_reported_with_what_names_it(storage_target):
    ds = _healthy(storage_target)
    storage = storage_target.open()
    first = ds.commits[-1]["commit"]  # the first commit (the root is not listed)
    storage.delete(keys.commit_key(first))
    report = ds.verify()
    (problem,) = report.problems
    assert problem.key == keys.commit_key(first)
    # main is checked first (branches in creation order), whose head it is
    assert problem.message == "missing (the head of refs/heads/main)"


def test_a_bad_branch_pointer_is_reported(storage_target):
    ds = _healthy(storage_target)
    storage = storage_target.open()
    storage.put(keys.ref_key("dev"), b"not a commit")
    (problem,) = ds.verify().problems
    assert problem.key == "refs/heads/dev" and "does not hold a commit id" in problem.message


def test_a_broken_link_is_reported_with_links_true(tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (files / name).write_bytes(jpeg_bytes(8, 8))
    ds = tl.empty(tmp_path / "ds")
    ds.create_tensor("ref", htype="link[image]", sample_compression="jpeg")
    ds.ref.extend([tl.link(str(files / "a.jpg")), tl.link(str(files / "b.jpg"))])
    ds.commit("links")
    assert ds.verify(links=True).ok and ds.verify(links=True).links == 2
    (files / "b.jpg").unlink()
    assert ds.verify().ok  # links are not checked unless asked
    report = ds.verify(links=True)
    (problem,) = report.problems
    assert problem.key == f"file://{files / 'b.jpg'}"
    assert problem.message == "linked object does not exist (tensor 'ref')"
    assert report.links == 2


def test_verify_flushes_first_and_shows_a_progress_bar_on_stderr(tmp_path, capsys):
    ds = tl.empty(tmp_path / "ds")
    with ds:
        ds.create_tensor("x")
        ds.x.extend(np.zeros((5, 4)))
        report = ds.verify(progressbar=True)  # inside the block: not flushed yet
    assert report.ok and report.chunks == 1 and report.staging == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "verify" in captured.err and "100%" in captured.err


def test_a_missing_dataset_is_not_a_report(tmp_path):
    ds = tl.empty(tmp_path / "ds")
    tl.delete(tmp_path / "ds")
    with pytest.raises(tl.DatasetNotFoundError):
        ds.verify()


def test_a_manifest_that_disagrees_with_its_table_is_reported(tmp_path):
    ds = tl.empty(tmp_path / "ds")
    ds.create_tensor("x", dtype="int64")
    ds.x.extend(np.arange(5))
    storage = from_url(str(tmp_path / "ds"))
    staging = keys.staging_key("main")
    stored = unpack(storage.get(staging), "staging")
    stored["manifest"]["tensors"][0]["meta"]["length"] = 6
    storage.put(staging, pack(stored))
    (problem,) = ds.verify().problems
    assert problem.key == staging
    assert problem.message == "tensor 'x': its meta says 6 rows, its chunk table holds 5"
