"""The epochs every loader shares: order, shards, and the resume state (no torch)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tensorlake.errors import DatasetError
from tensorlake.integrations.loader.epochs import Pass, epoch_order
from tensorlake.integrations.loader.position import Position


def _units(n: int, chunk_rows: int = 10) -> np.ndarray:
    return np.arange(n, dtype=np.int64) // chunk_rows


def _position(n: int, **kw) -> Position:
    args = dict(batch_size=4, drop_last=False, shuffle=True, seed=3, window=16, rank=0)
    args.update(world_size=1)
    args.update(kw)
    return Position(_units(n), **args)


def _all_batches(p: Pass) -> list[list[int]]:
    return [p.batch(i).tolist() for i in range(len(p))]


@pytest.mark.parametrize(
    "n,batch_size,drop_last,shuffle,world_size",
    list(
        itertools.product([0, 1, 7, 50, 103], [1, 4, 32], [False, True], [False, True], [1, 2, 3])
    ),
)
def test_every_row_once_across_ranks(n, batch_size, drop_last, shuffle, world_size):
    order = epoch_order(_units(n), shuffle, seed=1, epoch=0, window=16)
    assert sorted(order.tolist()) == list(range(n))
    shards = [Pass(order, 0, batch_size, drop_last, r, world_size) for r in range(world_size)]
    seen = [row for p in shards for b in _all_batches(p) for row in b]
    assert len(seen) == len(set(seen))
    if not drop_last:
        assert sorted(seen) == list(range(n))
        counts = [len(p) for p in shards]
        assert max(counts) - min(counts) <= 1
    else:
        full = n // (batch_size * world_size) * world_size
        assert all(len(b) == batch_size for p in shards for b in _all_batches(p))
        assert {len(p) for p in shards} == {full // world_size}
        assert len(seen) == full * batch_size


def test_the_order_depends_on_seed_and_epoch_only():
    units = _units(500)
    a = epoch_order(units, True, seed=7, epoch=2, window=64)
    assert np.array_equal(a, epoch_order(units, True, seed=7, epoch=2, window=64))
    assert not np.array_equal(a, epoch_order(units, True, seed=7, epoch=3, window=64))
    assert not np.array_equal(a, epoch_order(units, True, seed=8, epoch=2, window=64))
    assert np.array_equal(epoch_order(units, False, 7, 2, 64), np.arange(500))


def test_a_view_inside_the_window_gets_a_uniform_permutation():
    n = 3000
    gaps = []
    for epoch in range(5):
        order = epoch_order(_units(n), True, seed=0, epoch=epoch, window=n)
        where = np.empty(n, dtype=np.int64)
        where[order] = np.arange(n)
        gaps.append(np.abs(np.diff(where)).mean())
    # two positions of a uniform permutation are n/3 apart on average
    assert abs(np.mean(gaps) / (n / 3) - 1) < 0.05


def test_a_large_view_is_shuffled_by_chunks_then_within_a_window():
    n, chunk_rows, window = 20_000, 100, 2_000
    units = _units(n, chunk_rows)
    order = epoch_order(units, True, seed=0, epoch=0, window=window)
    where = np.empty(n, dtype=np.int64)
    where[order] = np.arange(n)
    same_chunk = units[1:] == units[:-1]
    spread = np.abs(np.diff(where))[same_chunk]
    # neighbouring rows of a chunk land about window/3 apart, not next to each other
    assert np.median(spread) > window / 5
    # and the chunks are visited in a shuffled order, not the stored one
    first_seen = [int(np.flatnonzero(units[order] == u)[0]) for u in range(0, 200, 20)]
    assert first_seen != sorted(first_seen)
    # locality: any 256 consecutive rows of the order come from a few chunks
    most = max(len(np.unique(units[order[i : i + 256]])) for i in range(0, n - 256, 97))
    assert most <= (window + 256) // chunk_rows + 3


def test_state_resumes_after_the_last_batch_yielded():
    p = _position(50, batch_size=4)
    whole = _all_batches(p.peek())
    current = p.begin()
    for _ in range(5):
        p.yielded(current)
    state = p.state_dict()
    assert state["rows_consumed"] == 20 and state["epoch"] == 0
    resumed = _position(50, batch_size=4)
    resumed.load_state_dict(state)
    assert _all_batches(resumed.begin()) == whole[5:]


def test_resume_with_another_batch_size_or_world_size_loses_and_repeats_nothing():
    n = 61
    p = _position(n, batch_size=4, world_size=2)
    order = p.order(0)
    current = p.begin()
    for _ in range(3):  # each of the two ranks yielded 3 batches of 4: 24 rows
        p.yielded(current)
    state = p.state_dict()
    assert state["rows_consumed"] == 24
    ranks = []
    for r in range(3):
        q = _position(n, batch_size=5, world_size=3, rank=r)
        q.load_state_dict(state)
        ranks += [row for b in _all_batches(q.begin()) for row in b]
    assert sorted(ranks) == sorted(order[24:].tolist())


def test_a_state_saved_at_the_end_of_an_epoch_starts_the_next():
    p = _position(10, batch_size=4)
    current = p.begin()
    for _ in range(len(current)):
        p.yielded(current)
    state = p.state_dict()
    assert (state["epoch"], state["rows_consumed"]) == (1, 0)
    q = _position(10, batch_size=4)
    q.load_state_dict(state)
    nxt = q.begin()
    assert q.epoch == 1 and len(nxt) == 3
    assert _all_batches(nxt) == [b.tolist() for b in np.array_split(p.order(1), [4, 8])]


def test_each_iter_starts_the_epoch_unless_a_state_was_loaded():
    p = _position(20, batch_size=4)
    first = p.begin()
    p.yielded(first)  # a peek at one batch, then a new pass
    again = p.begin()
    assert p.epoch == 0 and _all_batches(again) == _all_batches(first)
    for _ in range(len(again)):
        p.yielded(again)
    p.finished(again)
    assert p.epoch == 1  # a pass run to its end moves to the next epoch


def test_set_epoch_keeps_a_loaded_position_of_that_epoch_only():
    p = _position(40, batch_size=4)
    p.load_state_dict({**p.state_dict(), "epoch": 2, "rows_consumed": 8})
    p.set_epoch(2)
    assert p.begin().start == 8
    p.set_epoch(3)
    assert p.begin().start == 0 and p.epoch == 3
    with pytest.raises(ValueError):
        p.set_epoch(-1)


@pytest.mark.parametrize(
    "change,word",
    [({"rows": 41}, "rows"), ({"seed": 4}, "seed"), ({"shuffle": False}, "shuffle"),
     ({"format": "x"}, "format"), ({"rows_consumed": 99}, "rows_consumed")],
)  # fmt: skip
def test_a_state_of_another_loader_is_refused(change, word):
    p = _position(40)
    with pytest.raises(DatasetError, match=word):
        p.load_state_dict({**p.state_dict(), **change})
    with pytest.raises(DatasetError, match="dict"):
        p.load_state_dict([1, 2])  # type: ignore[arg-type]
