"""The grace period: superseded objects stay readable, then go (flushes, gc, records)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tensorlake as tl
from tensorlake import config
from tensorlake.api.dataset import core_of
from tensorlake.engine.format import keys
from tensorlake.engine.version.gc import gc
from tensorlake.storage import from_url


@pytest.fixture
def grace(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setenv("TENSORLAKE_GC_GRACE", "300")
    return 300.0


def _chunks(path: str) -> set[str]:
    return {k for k in from_url(path).list(keys.TENSORS_PREFIX) if keys.is_chunk_key(k)}


def _garbage_records(path: str) -> list[str]:
    return list(from_url(path).list(keys.GARBAGE_PREFIX))


def _two_flushes(path: str) -> tuple[Any, set[str]]:
    """A dataset whose open chunk was flushed twice: the first copy is superseded."""
    ds = tl.empty(path)
    ds.create_tensor("x", dtype="int64")
    ds.x.append(np.array([1, 2]))
    first = _chunks(path)
    ds.x.append(np.array([3, 4]))
    assert len(first) == 1 and _chunks(path) - first
    return ds, first


def _later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + seconds)


def test_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TENSORLAKE_GC_GRACE")
    assert config.gc_grace() == config.DEFAULT_GC_GRACE == 300
    monkeypatch.setenv("TENSORLAKE_GC_GRACE", "2.5")
    assert config.gc_grace() == 2.5
    for bad in ("-1", "soon", "inf"):
        monkeypatch.setenv("TENSORLAKE_GC_GRACE", bad)
        with pytest.raises(tl.ConfigError, match="TENSORLAKE_GC_GRACE"):
            config.gc_grace()


def test_a_flush_holds_what_it_supersedes_for_the_grace(tmp_path: Path, grace: float) -> None:
    path = str(tmp_path / "ds")
    ds, first = _two_flushes(path)
    core = core_of(ds)
    assert first <= _chunks(path)  # still readable by whoever opened the older manifest
    assert first <= set(core.bin.entries())
    assert core.collect() == []  # not due yet
    assert set(core.collect(grace=0)) >= first
    assert not first & _chunks(path)
    assert ds.x.numpy().tolist() == [[1, 2], [3, 4]]


def test_with_a_grace_of_0_a_flush_deletes_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "ds")
    _, first = _two_flushes(path)  # (the suite runs with TENSORLAKE_GC_GRACE=0)
    assert not first & _chunks(path)


def test_gc_keeps_young_garbage_and_grace_0_deletes_it(
    tmp_path: Path, grace: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "ds")
    ds, first = _two_flushes(path)
    assert ds.gc()["chunks"] == 0
    assert first <= _chunks(path)
    assert len(_garbage_records(path)) == 1  # recorded, with the time it was discarded
    _later(monkeypatch, grace - 1)
    assert gc(core_of(ds))["chunks"] == 0
    _later(monkeypatch, grace + 1)
    assert gc(core_of(ds))["chunks"] == len(first)
    assert not first & _chunks(path)
    assert _garbage_records(path) == []
    assert ds.x.numpy().tolist() == [[1, 2], [3, 4]]


def test_gc_grace_0_deletes_everything_unreachable(tmp_path: Path, grace: float) -> None:
    path = str(tmp_path / "ds")
    ds, first = _two_flushes(path)
    counts = gc(core_of(ds), grace=0)
    assert counts["chunks"] == len(first) and counts["segments"] >= 1
    assert not first & _chunks(path) and _garbage_records(path) == []
    with pytest.raises(tl.DatasetArgumentError, match="grace"):
        gc(core_of(ds), grace=-1)


def test_a_closing_writer_records_its_garbage_for_the_next_gc(
    tmp_path: Path, grace: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "ds")
    ds, first = _two_flushes(path)
    ds.close()
    assert len(_garbage_records(path)) == 1
    again = tl.load(path)
    assert gc(core_of(again))["chunks"] == 0 and first <= _chunks(path)
    _later(monkeypatch, grace + 1)
    assert gc(core_of(again))["chunks"] == len(first)
    again.close()


def test_garbage_no_record_knows_is_held_from_the_first_gc_that_finds_it(
    tmp_path: Path, grace: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "ds")
    ds = tl.empty(path)
    ds.create_tensor("x")
    ds.commit("schema")
    stray = keys.chunk_key("x", 12345)  # what a crashed writer leaves
    from_url(path).put(stray, b"left by a crash")
    assert ds.gc()["chunks"] == 0 and stray in _chunks(path)
    _later(monkeypatch, grace / 2)
    assert ds.gc()["chunks"] == 0  # held from the first gc, not from the second
    _later(monkeypatch, grace + 1)
    assert ds.gc()["chunks"] == 1 and stray not in _chunks(path)


def test_a_commit_discards_rather_than_deletes(tmp_path: Path, grace: float) -> None:
    path = str(tmp_path / "ds")
    ds, first = _two_flushes(path)
    ds.x.append(np.array([5, 6]))  # the flushed open chunk superseded again, unflushed
    ds.commit("three rows")
    assert first <= _chunks(path)
    assert tl.load(path, read_only=True).x.numpy().tolist() == [[1, 2], [3, 4], [5, 6]]
