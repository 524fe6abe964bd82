"""The writer's side of an eval: checkpoints, storing them behind the workers, recovery."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.engine.version import commit as version_commit
from tests.compute.transforms import create_schema, fail_on, make_rows


def test_checkpoints_are_commits_in_the_log(capsys):
    ds = tl.empty("mem://compute-ckpt", overwrite=True)
    create_schema(ds)
    report = make_rows().eval(np.arange(50), ds, checkpoint_interval=20, progressbar=False)
    assert len(report.checkpoints) == 3  # 20, 40, and the final 50
    commits = ds.commits
    assert [c["samples_processed"] for c in commits[:3]] == [50, 40, 20]
    assert commits[2]["message"] == "Auto-commit during compute of make_rows after 40.0% progress"
    assert commits[3]["message"] == "Auto-commit before compute of make_rows"  # the schema
    assert not ds.has_head_changes
    ds.log()
    assert "after 80.0% progress" in capsys.readouterr().out


@pytest.mark.parametrize("scheduler,workers", [("serial", 0), ("threaded", 2), ("processed", 2)])
def test_failure_resets_to_the_last_checkpoint(tmp_path, scheduler, workers):
    ds = tl.empty(str(tmp_path / "ds"))
    ds.create_tensor("x", dtype="int64")
    with pytest.raises(tl.TransformError) as info:
        fail_on(bad=57).eval(
            range(100),
            ds,
            num_workers=workers,
            scheduler=scheduler,
            checkpoint_interval=20,
            progressbar=False,
        )
    err = info.value
    assert str(err) == (
        "Transform failed at index 57 of the input data on the item: 57. Last checkpoint: "
        "40 samples processed. You can slice the input to resume from this point."
    )
    assert err.index == 57 and err.samples_processed == 40
    assert isinstance(err.__cause__, ValueError) and "item 57 is broken" in str(err.__cause__)
    if scheduler == "processed":
        assert "fail_on" in str(err.__cause__.__cause__)  # the worker's traceback
    assert ds.x.numpy().ravel().tolist() == list(range(40)) and not ds.has_head_changes
    assert ds.gc() == {"chunks": 0, "segments": 0, "commits": 0, "staging": 0, "temp_files": 0}
    # resume from the checkpoint with a fixed transform
    fail_on(bad=-1).eval(range(100), ds, checkpoint_interval=20, resume=True, progressbar=False)
    assert ds.x.numpy().ravel().tolist() == list(range(100))


def _gate_checkpoint_stores(monkeypatch, gate):
    """Have the background thread that stores checkpoints call ``gate(n)`` before it
    stores its n-th commit (1-based)."""
    real_store = version_commit.PreparedCommit.store
    calls = []

    def store(self):
        if threading.current_thread().name.startswith("tl-checkpoint"):
            calls.append(self.id)
            gate(len(calls))
        real_store(self)

    monkeypatch.setattr(version_commit.PreparedCommit, "store", store)


@tl.compute
def signal_at(i, sample_out, at, event, fail=False):
    if i == at:
        event.set()
        if fail:
            raise ValueError(f"item {i} is broken")
    sample_out.x.append(i)


def test_items_run_on_while_checkpoints_are_stored(monkeypatch):
    """Storing a checkpoint (round trips, fsyncs) never holds up the transform: here the
    first one is only stored once item 70 has run, three checkpoints later; they are
    then stored in order."""
    reached_70 = threading.Event()
    waited = []
    _gate_checkpoint_stores(monkeypatch, lambda n: n == 1 and waited.append(reached_70.wait(30)))
    ds = tl.empty("mem://compute-ckpt-behind", overwrite=True)
    ds.create_tensor("x", dtype="int64")
    ds.commit("schema")
    report = signal_at(at=70, event=reached_70).eval(
        range(100), ds, checkpoint_interval=20, progressbar=False
    )
    assert waited == [True]
    assert [c["samples_processed"] for c in ds.commits[:5]] == [100, 80, 60, 40, 20]
    assert report.checkpoints == [c["commit"] for c in ds.commits[:5]][::-1]
    assert tl.load("mem://compute-ckpt-behind").x.numpy().ravel().tolist() == list(range(100))


def test_a_failure_while_a_checkpoint_is_stored_waits_for_it(monkeypatch):
    """The error names the last checkpoint that is stored: one still being stored when
    an item fails is waited for, and counts."""
    failing = threading.Event()
    _gate_checkpoint_stores(monkeypatch, lambda n: n == 1 and failing.wait(30))
    ds = tl.empty("mem://compute-ckpt-fail", overwrite=True)
    ds.create_tensor("x", dtype="int64")
    ds.commit("schema")
    with pytest.raises(tl.TransformError, match="Last checkpoint: 20 samples processed"):
        signal_at(at=25, event=failing, fail=True).eval(
            range(50), ds, checkpoint_interval=20, progressbar=False
        )
    assert ds.x.numpy().ravel().tolist() == list(range(20)) and not ds.has_head_changes


def test_a_checkpoint_that_cannot_be_stored_fails_the_eval_at_the_one_before(tmp_path, monkeypatch):
    def gate(n):
        if n == 2:
            raise tl.StorageError("disk full (injected)")

    _gate_checkpoint_stores(monkeypatch, gate)
    ds = tl.empty(str(tmp_path / "ds"))
    ds.create_tensor("x", dtype="int64")
    ds.commit("schema")
    with pytest.raises(tl.StorageError, match="disk full"):
        fail_on(bad=-1).eval(range(100), ds, checkpoint_interval=20, progressbar=False)
    for reopened in (ds, tl.load(str(tmp_path / "ds"))):
        assert reopened.x.numpy().ravel().tolist() == list(range(20))
        assert [c["samples_processed"] for c in reopened.commits[:1]] == [20]
    assert ds.gc()["commits"] == 0  # the commit that failed was never stored


def test_when_the_commit_before_the_eval_cannot_be_stored_the_changes_stay(tmp_path, monkeypatch):
    def gate(n):
        if n == 1:  # "Auto-commit before compute": the tensor created below
            raise tl.StorageError("disk full (injected)")

    _gate_checkpoint_stores(monkeypatch, gate)
    ds = tl.empty(str(tmp_path / "ds"))
    ds.create_tensor("x", dtype="int64")
    with pytest.raises(tl.StorageError, match="disk full"):
        fail_on(bad=-1).eval(range(100), ds, checkpoint_interval=20, progressbar=False)
    for reopened in (ds, tl.load(str(tmp_path / "ds"))):
        assert list(reopened.tensors) == ["x"] and len(reopened.x) == 0
        assert reopened.has_head_changes and reopened.commits == []  # only the root


def test_failure_without_checkpoints_restores_the_state_before_eval():
    ds = tl.empty("mem://compute-rollback", overwrite=True)
    ds.create_tensor("x", dtype="int64")
    ds.x.extend([-1, -2])  # uncommitted, kept
    with pytest.raises(tl.TransformError, match="Last checkpoint: 0 samples processed"):
        fail_on(bad=30).eval(range(50), ds, progressbar=False)
    assert ds.x.numpy().ravel().tolist() == [-1, -2] and ds.has_head_changes
    assert tl.load("mem://compute-rollback").x.numpy().ravel().tolist() == [-1, -2]
