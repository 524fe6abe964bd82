"""Index segments (manifest format 4): large chunk tables are named through index
segments listing their leaves; small ones, and manifests written before, keep format 2/3."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.api.dataset import core_of
from tensorlake.engine.format import manifest as manifest_module
from tensorlake.engine.format import records, table_index
from tensorlake.engine.format.chunk_table import (
    KIND_LAST_TILE,
    KIND_TILE,
    SEGMENT_ENTRIES,
    ChunkRef,
    ChunkTable,
)
from tensorlake.engine.format.keys import segment_key
from tensorlake.engine.format.manifest import Manifest, TensorMeta, TensorState
from tensorlake.engine.format.packing import pack, unpack
from tensorlake.engine.format.segments import ManifestStore, references, segment_set
from tensorlake.engine.version.reachable import ancestry
from tensorlake.errors import FormatError
from tensorlake.storage import LocalStorage, MemoryStorage

FANOUT_ENTRIES = SEGMENT_ENTRIES * table_index.INDEX_FANOUT  # entries one index segment covers


class CountingStorage(MemoryStorage):
    """Memory storage that records the keys it is asked for."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.got: list[str] = []

    def _get(self, key: str) -> bytes:
        self.got.append(key)
        return super()._get(key)


def _table(n: int, seed: int = 0, staged: bool = False) -> ChunkTable:
    rng = np.random.default_rng(seed)
    return ChunkTable(
        {
            "ids": rng.integers(1, 2**62, n, dtype=np.uint64),
            "row_ends": np.cumsum(rng.integers(1, 50, n)).astype(np.int64),
            "nbytes": np.arange(100, 100 + n, dtype=np.int64),
            "header_nbytes": np.full(n, 10, dtype=np.int64),
            "kind": np.zeros(n, dtype=np.uint8),
            "staged": np.full(n, int(staged), dtype=np.uint8),
        }
    )


def _save(table: ChunkTable, name: str) -> tuple[CountingStorage, dict]:
    storage = CountingStorage(name)
    m = Manifest({"v": TensorState(TensorMeta("v", length=table.num_rows), table)})
    stored = unpack(pack(ManifestStore(storage).save(m)), "m")
    storage.got.clear()
    return storage, stored


def _columns_equal(a: ChunkTable, b: ChunkTable) -> None:
    for k in ("ids", "row_ends", "nbytes", "header_nbytes", "kind", "staged"):
        assert np.array_equal(a.column(k), b.column(k)), k


@pytest.mark.parametrize("n", [SEGMENT_ENTRIES * 40 + 17, FANOUT_ENTRIES * 2 + 300])
def test_a_large_table_round_trips_through_index_segments(n: int) -> None:
    table = _table(n)
    storage, stored = _save(table, f"index-rt-{n}")
    t = stored["tensors"][0]
    assert stored["format"] == 4 and "segments" not in t
    leaves = -(-n // SEGMENT_ENTRIES)
    assert len(t["index"]) == -(-leaves // table_index.INDEX_FANOUT)
    back = ManifestStore(storage).load(stored).tensors["v"].table
    assert storage.got == [t["index"][-1]]  # open: the last index segment, no leaf
    assert len(back) == n and back.num_rows == table.num_rows
    _columns_equal(back, table)


def test_a_small_table_keeps_format_2_and_names_its_leaves() -> None:
    table = _table(SEGMENT_ENTRIES * (table_index.INDEX_MIN_LEAVES - 1))
    storage, stored = _save(table, "index-small")
    assert stored["format"] == 2 and "index" not in stored["tensors"][0]
    assert len(stored["tensors"][0]["segments"]) == table_index.INDEX_MIN_LEAVES - 1
    _columns_equal(ManifestStore(storage).load(stored).tensors["v"].table, table)


def test_locate_reads_one_leaf_per_new_leaf_touched_and_matches_the_table() -> None:
    table = _table(FANOUT_ENTRIES + 5000)  # two index segments
    storage, stored = _save(table, "index-locate")
    back = ManifestStore(storage).load(stored).tensors["v"].table
    rows = np.random.default_rng(3).integers(0, table.num_rows, 200).tolist()
    back.locate(rows[0])
    assert len(storage.got) == 3  # the first index segment, then the leaf
    for row in rows:
        before = len(storage.got)
        j = back.locate(row)
        assert j == table.locate(row)
        assert back[j] == table[j] and back.row_start(j) == table.row_start(j)
        assert len(storage.got) - before <= 1
    assert back.locate(table.num_rows) == len(table)  # past the end, as before
    assert np.array_equal(
        back.locate_many(np.array(rows[:5])), table.locate_many(np.array(rows[:5]))
    )
    assert len(storage.got) < 1 + 2 + 200  # never the whole table


def test_appending_to_a_large_table_stores_the_last_leaf_and_its_index_segment_only() -> None:
    table = _table(FANOUT_ENTRIES * 2 + 100)
    storage, stored = _save(table, "index-append")
    store = ManifestStore(storage)
    back = store.load(stored).tensors["v"].table
    back.append(ChunkRef(5, table.num_rows + 3, 10, 5))
    back.append(ChunkRef(6, table.num_rows + 4, 10, 5))
    # the last index segment (at load), the last leaf, and the index segment before
    # (where the leaf before it ends)
    assert len(storage.got) == 3
    new, again = store.plan(Manifest({"v": TensorState(TensorMeta("v"), back)}))
    old_index, new_index = stored["tensors"][0]["index"], again["tensors"][0]["index"]
    assert new_index[:-1] == old_index[:-1] and new_index[-1] != old_index[-1]
    assert sorted(new) == sorted([new_index[-1], *(k for k in new if k != new_index[-1])])
    assert len(new) == 2  # the last leaf and the last index segment
    assert sum(map(len, new.values())) < 20_000
    assert len(pack(again)) < 500  # the manifest: a few keys, whatever the table's size
    assert len(storage.got) == 3  # and nothing else read
    reloaded = store.load(
        unpack(pack(store.save(Manifest({"v": TensorState(TensorMeta("v"), back)}))), "m")
    )
    assert reloaded.tensors["v"].table[len(table) + 1] == ChunkRef(6, table.num_rows + 4, 10, 5)
    assert reloaded.tensors["v"].table.num_rows == table.num_rows + 4
    untouched = ManifestStore(storage).load(stored)  # nothing changed: nothing to store
    assert ManifestStore(storage).plan(untouched)[0] == {}


def test_a_table_that_reaches_the_minimum_gets_an_index_at_its_next_store() -> None:
    table = _table(SEGMENT_ENTRIES * (table_index.INDEX_MIN_LEAVES - 1))
    storage, stored = _save(table, "index-grow")
    store = ManifestStore(storage)
    back = store.load(stored).tensors["v"].table
    for i in range(SEGMENT_ENTRIES):
        back.append(ChunkRef(i + 1, table.num_rows + i + 1, 10, 5))
    again = store.save(Manifest({"v": TensorState(TensorMeta("v"), back)}))
    assert again["format"] == 4 and len(again["tensors"][0]["index"]) == 1
    assert len(store.load(again).tensors["v"].table) == len(table) + SEGMENT_ENTRIES


def test_format_2_manifests_of_large_tables_still_read_and_upgrade_on_their_next_commit() -> None:
    table = _table(SEGMENT_ENTRIES * 40 + 3)
    storage = CountingStorage("index-old")
    leaves = table.segments()
    for part in leaves:
        storage.put(segment_key(part), part)
    old = {
        "format": 2,
        "tensors": [
            {"meta": TensorMeta("v").to_dict(), "segments": [segment_key(p) for p in leaves]}
        ],
    }
    store = ManifestStore(storage)
    back = store.load(old).tensors["v"].table
    assert back.num_rows == table.num_rows and back[17] == table[17]
    assert back.locate(1234) == table.locate(1234)
    back.mark_committed()
    again = store.save(Manifest({"v": TensorState(TensorMeta("v"), back)}))
    assert again["format"] == 4
    _columns_equal(store.load(again).tensors["v"].table, table)


def test_a_reader_of_format_3_refuses_format_4_with_the_upgrade_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, stored = _save(_table(SEGMENT_ENTRIES * 20), "index-refuse")
    monkeypatch.setattr(manifest_module, "MANIFEST_FORMAT_MAJOR", 3)
    with pytest.raises(FormatError, match="Upgrade tensorlake"):
        Manifest.tables(stored)


def test_committing_a_lazy_staged_table_repacks_its_leaves_unstaged() -> None:
    table = _table(SEGMENT_ENTRIES * 20 + 9, staged=True)
    storage, stored = _save(table, "index-staged")
    store = ManifestStore(storage)
    back = store.load(stored).tensors["v"].table
    back.mark_committed()
    assert not back[3].staged
    new, again = store.plan(Manifest({"v": TensorState(TensorMeta("v"), back)}))
    assert len(new) == 21 + 1  # every leaf, and the index segment
    store.put_segments(new)
    committed = store.load(again).tensors["v"].table
    assert not committed.column("staged").any()
    assert np.array_equal(committed.column("ids"), table.column("ids"))


def test_tile_spans_of_a_lazy_table_are_found_entry_by_entry() -> None:
    table = _table(SEGMENT_ENTRIES * 20)
    kinds = table.column("kind")
    kinds[SEGMENT_ENTRIES - 2 : SEGMENT_ENTRIES + 1] = KIND_TILE  # a sample across two leaves
    kinds[SEGMENT_ENTRIES + 1] = KIND_LAST_TILE
    storage, stored = _save(table, "index-tiles")
    back = ManifestStore(storage).load(stored).tensors["v"].table
    assert back.tile_span(SEGMENT_ENTRIES + 1) == (SEGMENT_ENTRIES - 2, SEGMENT_ENTRIES + 2)
    assert back.tile_span(7) == (7, 8)
    assert len(storage.got) == 3  # the index segment (at load), two leaves: not the table


def test_references_follow_index_segments_to_leaves_and_chunks() -> None:
    table = _table(SEGMENT_ENTRIES * 20 + 1)
    storage, stored = _save(table, "index-refs")
    found = references([stored], storage.get_many)
    leaves = {segment_key(p) for p in table.segments()}
    assert found.segments == leaves | set(stored["tensors"][0]["index"])
    assert len(found.chunks) == len(table)
    assert segment_set(stored) == frozenset(stored["tensors"][0]["index"])


# -- datasets whose tables have an index (a low minimum, so they stay small) ------------


@pytest.fixture
def index_from_2_leaves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(table_index, "INDEX_MIN_LEAVES", 2)


def _dataset(path: Path, rows: int) -> tl.Dataset:
    ds = tl.empty(str(path))
    ds.create_tensor("x", dtype="int64", max_chunk_size=64)  # 8 rows a chunk
    with ds:
        for i in range(0, rows, 8):
            ds.x.extend(np.arange(i, i + 8))
    ds.commit("rows")
    return ds


def _files(path: Path) -> dict[str, int]:
    return {
        p.relative_to(path).as_posix(): p.stat().st_size for p in path.rglob("*") if p.is_file()
    }


def test_a_commit_writes_the_same_bytes_whatever_the_table_size(
    tmp_path: Path, index_from_2_leaves: None
) -> None:
    written = {}
    for leaves in (3, 30):
        path = tmp_path / f"ds{leaves}"
        ds = _dataset(path, leaves * SEGMENT_ENTRIES * 8 - 80)
        manifest = records.read_commit(core_of(ds).storage, ds.commit_id).manifest
        assert manifest["format"] == 4
        before = _files(path)
        ds.x.append(7)
        ds.commit("one more")
        new = {k: n for k, n in _files(path).items() if before.get(k) != n and k != "lock"}
        tables = [k for k in new if k.startswith("tables/")]
        # the last leaf and its index segment, for the staging state (the append's
        # flush) and for the commit
        assert 2 <= len(tables) <= 4, new  # (the staging ones may be deleted already)
        written[leaves] = sum(new.values())
        assert ds.x[len(ds) - 1].numpy() == 7 and ds.x[1234].numpy() == 1234
        ds.close()
    assert written[30] < written[3] + 5_000, written  # the index lists 27 more leaves


def test_superseded_staged_leaves_are_discarded_by_the_writer(
    tmp_path: Path, index_from_2_leaves: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENSORLAKE_GC_GRACE", "0")
    ds = _dataset(tmp_path / "ds", 3 * SEGMENT_ENTRIES * 8)
    for i in range(5):
        ds.x.append(i)  # each a flush: a staging state, superseded by the next
    ds.commit("more")
    storage = LocalStorage(str(tmp_path / "ds"))
    history = [records.read_commit(storage, c).manifest for c in ancestry(storage, ds.commit_id)]
    stored = set(storage.list("tables/"))
    assert references(history, storage.get_many).segments == stored  # nothing left over
    assert ds.gc(grace=0)["segments"] == 0
    ds.close()


def test_gc_and_verify_follow_index_segments(
    tmp_path: Path, index_from_2_leaves: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENSORLAKE_GC_GRACE", "0")
    ds = _dataset(tmp_path / "ds", 3 * SEGMENT_ENTRIES * 8)
    for i in range(3):
        ds.x.append(i)
        ds.commit(f"c{i}")
    storage = LocalStorage(str(tmp_path / "ds"))
    orphan = pack(_table(3).to_dict())
    storage.put(segment_key(orphan), orphan)
    counts = ds.gc(grace=0)
    assert counts["segments"] == 1 and counts["chunks"] == 0
    assert not storage.exists(segment_key(orphan))
    report = ds.verify()
    assert report.ok, report
    assert report.segments == 3 + 1 + 3 * 2  # leaves + index of the first commit, then 2 each
    np.testing.assert_array_equal(
        tl.load(str(tmp_path / "ds"), read_only=True).x[:5000].numpy(), ds.x[:5000].numpy()
    )
    head = records.read_commit(storage, ds.commit_id).manifest
    index_key = head["tensors"][0]["index"][0]
    leaf = table_index.unpack_index(storage.get(index_key), "i").keys[0]
    storage.put(leaf, storage.get(leaf) + b"x")
    damaged = ds.verify()
    assert not damaged.ok and any(p.key == leaf and "hash" in p.message for p in damaged.problems)
    storage.put(index_key, b"not an index")
    damaged = ds.verify()
    assert any(p.key == index_key for p in damaged.problems)
    ds.close()
