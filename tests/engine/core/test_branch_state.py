"""Where a dataset is in its history is one immutable value, which a failed commit restores."""

from __future__ import annotations

import dataclasses

import pytest

import tensorlake as tl
from tensorlake.api.dataset import core_of
from tensorlake.engine.core import BranchState
from tensorlake.engine.format import records


def test_branch_state_is_frozen():
    state = BranchState("main", "c" * 40)
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.dirty = True  # type: ignore[misc]
    moved = state.evolve(dirty=True)
    assert moved.has_head_changes and not state.has_head_changes


def test_a_failed_commit_puts_the_whole_state_back(monkeypatch):
    ds = tl.empty("mem://state", overwrite=True)
    ds.create_tensor("x")
    ds.x.append([1])
    core = core_of(ds)
    before = core.state
    assert before.has_head_changes and before.staged

    def failing_write_head(storage, branch, commit_id):
        raise tl.StorageError("the pointer cannot be written")

    monkeypatch.setattr(records, "write_head", failing_write_head)
    with pytest.raises(tl.StorageError):
        ds.commit("fails")
    assert core.state is before  # every field, not only the ones a rollback remembered
    monkeypatch.undo()
    commit_id = ds.commit("works")
    assert core.state.commit_id == commit_id and not core.state.has_head_changes
    assert core.state.changes is not before.changes
