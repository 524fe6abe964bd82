"""Fuzzed version-control records and small stored objects: commits (with their change
records), staging states, branch heads and creation times, saved views,
``tensorlake.json``, the writer lock and garbage records.

None of these carries a checksum (a commit or staging state is one msgpack map, a head a
commit id in ASCII, the root and the lock JSON), so damage that still decodes can give a
value: the property is that the parse gives a well-typed value or a ``FormatError``
naming the object's key, and nothing else. Garbage records are skipped when damaged, by
design (what they named is recorded afresh), so they never raise.
"""

from __future__ import annotations

import json
import math

import msgpack
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorlake as tl
from tensorlake.engine.core import garbage
from tensorlake.engine.format import keys, records, root
from tensorlake.engine.format.views import SavedView
from tensorlake.engine.lock.record import LockHolder
from tensorlake.errors import FormatError
from tensorlake.storage import MemoryStorage
from tests.engine.format.fuzzing import corrupted, fuzz_settings, mutated_record, parse_checked


def _source() -> dict[str, bytes]:
    """Every object of a small dataset made by the real writers: two commits, a staging
    state with updated, removed and renamed rows, a branch, a saved view, a lock."""
    ds = tl.empty("mem://fuzz-records-source", overwrite=True)
    with ds:
        ds.create_tensor("x", htype="generic", dtype="int64")
        ds.create_tensor("t", htype="text")
        ds.x.extend(np.arange(10))
        ds.t.extend([f"r{i}" for i in range(10)])
    ds.commit("one")
    ds[1:4].save_view(message="v")
    ds.checkout("b", create=True)
    ds.checkout("main")
    ds.x[3] = 99
    ds.pop(2)
    ds.rename_tensor("t", "t2")
    ds.flush()
    storage = ds._core.storage
    objects = dict(storage.get_many(list(storage.list(""))))
    garbage.write_record(storage, {"tensors/x/chunks/00000000000000aa": 1.5e9, "tables/ab": 2.0})
    objects.update(storage.get_many(list(storage.list(keys.GARBAGE_PREFIX))))
    return objects


OBJECTS = _source()
COMMITS = sorted(k for k in OBJECTS if k.startswith(keys.COMMITS_PREFIX))
GARBAGE = next(k for k in OBJECTS if k.startswith(keys.GARBAGE_PREFIX))
VIEW = next(k for k in OBJECTS if k.startswith(keys.VIEWS_PREFIX))
STAGING = keys.staging_key("main")


def _damaged(draw, key: str) -> bytes:
    """``key``'s bytes corrupted, or decoded, changed in one field and encoded again."""
    good = OBJECTS[key]
    if draw(st.booleans()):
        return draw(corrupted(good))
    if key.endswith(".msgpack"):
        decoded = msgpack.unpackb(good, raw=False, strict_map_key=False)
        return msgpack.packb(draw(mutated_record(decoded)), use_bin_type=True)
    if key in (keys.DATASET_META_KEY, keys.LOCK_KEY):
        changed = draw(mutated_record(json.loads(good)))
        return json.dumps(changed, default=repr).encode()
    return draw(corrupted(good))


def _check_commit(v: records.StoredVersion) -> None:
    assert isinstance(v.manifest, dict)
    c = v.commit
    if c is not None:
        assert isinstance(c.id, str) and isinstance(c.author, str) and isinstance(c.branch, str)
        assert c.parent is None or isinstance(c.parent, str)
        assert c.message is None or isinstance(c.message, str)
        assert isinstance(c.time, float) and math.isfinite(c.time)
        assert isinstance(c.extra, dict)
    else:
        assert isinstance(v.base, str)
    ch = v.changes
    assert all(
        isinstance(t, str) and all(isinstance(r, int) for r in rows)
        for t, rows in ch.updated.items()
    )
    assert all(isinstance(t, str) for t in ch.info)
    assert all(isinstance(t, str) and isinstance(n, int) and n >= 0 for t, n in ch.deleted.items())
    assert all(isinstance(a, str) and isinstance(b, str) for a, b in ch.renamed.items())


@fuzz_settings
@given(which=st.integers(0, len(COMMITS) - 1), data=st.data())
def test_damaged_commit(which, data):
    key = COMMITS[which]
    bad = data.draw(st.composite(lambda draw: _damaged(draw, key))())
    got = parse_checked(lambda b: records.decode_commit(b, keys.commit_id_of(key)), bad, key)
    if not isinstance(got, FormatError):
        _check_commit(got)


def _stored(key: str, data: bytes) -> MemoryStorage:
    storage = MemoryStorage()
    storage.put(key, data)
    return storage


@fuzz_settings
@given(data=st.data())
def test_damaged_staging_state(data):
    bad = data.draw(st.composite(lambda draw: _damaged(draw, STAGING))())
    got = parse_checked(lambda b: records.read_staging(_stored(STAGING, b), "main"), bad, STAGING)
    if not isinstance(got, FormatError):
        _check_commit(got)


@fuzz_settings
@given(data=st.data())
def test_damaged_branch_head(data):
    key = keys.ref_key("main")
    bad = data.draw(corrupted(OBJECTS[key]))
    got = parse_checked(lambda b: records.read_head(_stored(key, b), "main"), bad, key)
    if not isinstance(got, FormatError):
        assert isinstance(got, str) and got and got.isascii() and got.isprintable()


@fuzz_settings
@given(data=st.data())
def test_damaged_branch_creation_time(data):
    storage = MemoryStorage()
    for key in (keys.ref_key("main"), keys.ref_key("b"), "refs/created/b"):
        storage.put(key, OBJECTS[key])
    storage.put("refs/created/b", data.draw(corrupted(OBJECTS["refs/created/b"])))
    assert records.list_branches(storage) == ["main", "b"]  # a damaged time orders as none


@fuzz_settings
@given(data=st.data())
def test_damaged_saved_view(data):
    bad = data.draw(st.composite(lambda draw: _damaged(draw, VIEW))())
    got = parse_checked(lambda b: SavedView.from_bytes(b, VIEW), bad, VIEW)
    if not isinstance(got, FormatError):
        assert isinstance(got.id, str) and isinstance(got.commit, str)
        assert got.message is None or isinstance(got.message, str)
        assert got.rows.dtype == np.int64 and math.isfinite(got.time)
        assert got.tensors is None or all(isinstance(t, str) for t in got.tensors)


@fuzz_settings
@given(data=st.data())
def test_damaged_root_object(data):
    key = keys.DATASET_META_KEY
    bad = data.draw(st.composite(lambda draw: _damaged(draw, key))())
    got = parse_checked(lambda b: root.check_format(_stored(key, b)), bad, key)
    if not isinstance(got, FormatError):
        assert isinstance(got, dict)
        assert 1 <= int(str(got["format_version"]).split(".")[0]) <= root.FORMAT_MAJOR


def _lock_bytes() -> bytes:
    return LockHolder("alice", "host", 1234, "ab" * 16, 1.7e9, 1.7e9, 60.0).to_bytes()


OBJECTS[keys.LOCK_KEY] = _lock_bytes()


@fuzz_settings
@given(data=st.data())
def test_damaged_lock_record(data):
    bad = data.draw(st.composite(lambda draw: _damaged(draw, keys.LOCK_KEY))())
    got = parse_checked(LockHolder.from_bytes, bad, keys.LOCK_KEY)
    if not isinstance(got, FormatError):
        assert got.pid > 0 and got.token and 0 < got.lease < math.inf
        assert math.isfinite(got.heartbeat) and math.isfinite(got.acquired)
        got.describe()


@fuzz_settings
@given(data=st.data())
def test_damaged_garbage_record_is_skipped(data):
    bad = data.draw(st.composite(lambda draw: _damaged(draw, GARBAGE))())
    read = parse_checked(lambda b: garbage.read_records(_stored(GARBAGE, b)), bad, GARBAGE)
    merged, found = read
    assert found == [GARBAGE]
    assert all(isinstance(k, str) and math.isfinite(t) for k, t in merged.items())


@pytest.mark.parametrize(
    "text",
    [
        b"[" * 100_000,
        b'{"format_version": "' + b"9" * 5000 + b'"}',
        b'{"format_version": 1e999}',
        b'{"format_version": "-1.0"}',
        b'{"format_version": null}',
        b"\xff\xfe",
    ],
)
def test_root_object_edge_cases(text):
    key = keys.DATASET_META_KEY
    assert isinstance(
        parse_checked(lambda b: root.check_format(_stored(key, b)), text, key), FormatError
    )


@pytest.mark.parametrize(
    "fields",
    [{"acquired": 10**400}, {"heartbeat": float("nan")}, {"pid": 2**80}, {"lease": 1e400}],
)
def test_lock_record_edge_cases(fields):
    record = {**json.loads(_lock_bytes()), **fields}
    text = json.dumps(record).encode()
    assert isinstance(parse_checked(LockHolder.from_bytes, text, keys.LOCK_KEY), FormatError)
