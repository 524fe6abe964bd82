"""The format at scale (issue 21): lazy chunk tables, diffs that stop at the common
ancestor, and ``benchmarks.scale_bench`` run at a tiny scale so it cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.api.dataset import core_of
from tensorlake.engine.format.chunk_table import SEGMENT_ENTRIES, ChunkRef, ChunkTable
from tensorlake.engine.format.manifest import Manifest, TensorMeta, TensorState
from tensorlake.engine.format.packing import pack, unpack
from tensorlake.engine.format.segments import ManifestStore
from tensorlake.storage import MemoryStorage

ROOT = Path(__file__).resolve().parent.parent


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
    ends = np.cumsum(rng.integers(1, 50, n))
    t = ChunkTable()
    for j in range(n):
        t.append(ChunkRef(int(rng.integers(1, 2**62)), int(ends[j]), 100 + j, 10, 0, staged))
    return t


def _stored(n: int, name: str, staged: bool = False) -> tuple[CountingStorage, dict, ChunkTable]:
    storage = CountingStorage(name)
    table = _table(n, staged=staged)
    m = Manifest({"v": TensorState(TensorMeta("v", length=table.num_rows), table)})
    stored = unpack(pack(ManifestStore(storage).save(m)), "m")
    storage.got.clear()
    return storage, stored, table


def test_a_loaded_table_reads_only_its_last_segment_and_equals_the_stored_one() -> None:
    n = SEGMENT_ENTRIES * 12 + 17  # (under INDEX_MIN_LEAVES: the leaves are named)
    storage, stored, table = _stored(n, "scale-lazy-eq")
    back = ManifestStore(storage).load(stored).tensors["v"].table
    assert storage.got == [stored["tensors"][0]["segments"][-1]]
    assert len(back) == n and back.num_rows == table.num_rows
    for k in ("ids", "row_ends", "nbytes", "header_nbytes", "kind", "staged"):
        assert np.array_equal(back.column(k), table.column(k)), k
    assert len(storage.got) == 13  # the rest read once, when a column was needed


def test_locating_a_row_reads_log_n_segments() -> None:
    leaves = 64
    storage, stored, table = _stored(SEGMENT_ENTRIES * leaves, "scale-lazy-locate")
    back = ManifestStore(storage).load(stored).tensors["v"].table
    rows = np.random.default_rng(3).integers(0, table.num_rows, 50)
    for row in rows.tolist():
        before = len(storage.got)
        j = back.locate(row)
        assert j == table.locate(row)
        assert back[j] == table[j] and back.row_start(j) == table.row_start(j)
        assert len(storage.got) - before <= int(np.log2(leaves)) + 2
    assert back.locate(table.num_rows) == len(table)  # past the end, as before


def test_a_commit_after_one_append_packs_and_stores_only_the_last_segment() -> None:
    storage, stored, table = _stored(SEGMENT_ENTRIES * 10, "scale-lazy-append")
    store = ManifestStore(storage)
    m = store.load(stored)
    m.tensors["v"].table.append(ChunkRef(5, table.num_rows + 3, 10, 5))
    new, again = store.plan(m)
    old = stored["tensors"][0]["segments"]
    assert again["tensors"][0]["segments"][:-1] == old
    assert list(new) == [again["tensors"][0]["segments"][-1]]
    untouched = ManifestStore(storage).load(stored)  # nothing changed: nothing to store
    assert ManifestStore(storage).plan(untouched)[0] == {}


def test_mark_committed_on_a_lazy_staged_table_clears_every_entry() -> None:
    storage, stored, _ = _stored(SEGMENT_ENTRIES * 3 + 5, "scale-lazy-staged", staged=True)
    store = ManifestStore(storage)
    table = store.load(stored).tensors["v"].table
    table.mark_committed()
    assert not table[0].staged
    new, again = store.plan(Manifest({"v": TensorState(TensorMeta("v"), table)}))
    assert not table.column("staged").any() and len(new) == 4
    assert again["tensors"][0]["segments"] != stored["tensors"][0]["segments"]


def test_inline_tables_of_format_1_still_load() -> None:
    table = _table(300)
    old = {"tensors": [{"meta": TensorMeta("v").to_dict(), "chunks": table.to_dict()}]}
    back = ManifestStore(MemoryStorage("scale-format-1")).load(old).tensors["v"].table
    assert np.array_equal(back.row_ends, table.row_ends)


def test_diff_reads_only_the_commits_back_to_the_common_ancestor(tmp_path: Path) -> None:
    ds = tl.empty(str(tmp_path / "ds"))
    ds.create_tensor("x", dtype="int64")
    ids = []
    for i in range(12):
        ds.x.append(i)
        ids.append(ds.commit(f"c{i}"))
    core = core_of(ds)
    reads: list[str] = []
    get = core.storage.get

    def counting_get(key: str) -> bytes:
        reads.append(key)
        return get(key)

    core.storage.get = counting_get  # type: ignore[method-assign]
    d = ds.diff(ids[-2], ids[-1], as_dict=True)
    assert d is not None and d["base"] == ids[-2]
    assert d["b"]["tensors"]["x"]["rows_added"] == [11, 12]
    assert len([k for k in reads if k.startswith("commits/")]) <= 4  # not all 13
    ds.checkout("side", create=True)
    ds.x.append(99)
    side = ds.commit("side")
    d = ds.diff(ids[3], side, as_dict=True)
    assert d is not None and d["base"] == ids[3]
    assert d["b"]["tensors"]["x"]["rows_added"] == [4, 13]


@pytest.mark.slow
def test_scale_bench_quick_prints_the_table(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale_bench", "--quick", "--work", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for label in ("open + len", "locate a row", "commit after one new chunk", "checkout", "diff"):
        assert label in out, out
    assert "PASS" in out
    lines = [line for line in out.splitlines() if line.startswith("open + len")]
    assert lines and lines[0].rstrip().endswith("PASS"), out
