"""The scheduler registry: built-ins, a registered scheduler running an eval, errors."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

import tensorlake as tl
from tensorlake.compute import Scheduler, SchedulerContext, register_scheduler, scheduler_names
from tensorlake.compute.schedulers import SerialScheduler, make_scheduler, registry
from tensorlake.compute.worker import BlockResult, Task
from tests.compute.transforms import content, create_schema, fail_on, make_rows

UNKNOWN = "scheduler must be one of {names}, got 'spark'."


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    """What a test registers is gone after it."""
    monkeypatch.setattr(registry, "_factories", dict(registry._factories))
    monkeypatch.setattr(registry, "_in_other_processes", set(registry._in_other_processes))


class Counting:
    """The serial scheduler, recording each call the eval makes."""

    def __init__(self, context: SchedulerContext) -> None:
        self.context = context
        self.inner = SerialScheduler(context)
        self.calls: list[str] = []

    def submit(self, task: Task) -> Future[BlockResult]:
        self.calls.append("submit")
        return self.inner.submit(task)

    def stop(self) -> None:
        self.calls.append("stop")
        self.inner.stop()

    def close(self) -> None:
        self.calls.append("close")
        self.inner.close()

    def release(self) -> None:
        self.calls.append("release")
        self.inner.release()


def _register_counting() -> list[Counting]:
    made: list[Counting] = []

    def factory(context: SchedulerContext) -> Scheduler:
        made.append(Counting(context))
        return made[-1]

    register_scheduler("mine", factory)
    return made


def test_the_built_in_schedulers_are_registered():
    assert scheduler_names() == ("serial", "threaded", "processed", "ray", "dask")


def test_a_registered_scheduler_runs_the_eval_with_the_serial_result():
    reference = tl.empty("mem://sched-reference", overwrite=True)
    create_schema(reference)
    make_rows().eval(range(60), reference, progressbar=False)
    made = _register_counting()
    assert scheduler_names() == ("serial", "threaded", "processed", "ray", "dask", "mine")
    ds = tl.empty("mem://sched-mine", overwrite=True)
    create_schema(ds)
    report = make_rows().eval(range(60), ds, num_workers=1, scheduler="mine", progressbar=False)
    assert content(ds) == content(reference)
    assert report.items == 60 and report.samples == len(reference)
    [sched] = made
    assert sched.context.num_workers == 1 and sched.context.input_dataset is None
    assert sched.calls == ["submit"] * 4 + ["close", "release"]  # 4 blocks of 15 items


def test_a_failing_eval_stops_then_releases_the_registered_scheduler():
    made = _register_counting()
    ds = tl.empty("mem://sched-mine-fails", overwrite=True)
    ds.create_tensor("x", dtype="int64")
    with pytest.raises(tl.TransformError, match="index 20"):
        fail_on(bad=20).eval(range(60), ds, num_workers=1, scheduler="mine", progressbar=False)
    assert made[0].calls[-2:] == ["stop", "release"] and "close" not in made[0].calls
    assert len(ds.x) == 0


def test_no_workers_means_serial_whatever_the_scheduler():
    made = _register_counting()
    ds = tl.empty("mem://sched-no-workers", overwrite=True)
    ds.create_tensor("x", dtype="int64")
    fail_on(bad=-1).eval(range(10), ds, num_workers=0, scheduler="mine", progressbar=False)
    assert made == [] and ds.x.numpy().ravel().tolist() == list(range(10))
    context = SchedulerContext(0, None, [], None, None, print, print)  # type: ignore[arg-type]
    assert isinstance(make_scheduler("processed", context), SerialScheduler)


def test_an_unknown_scheduler_is_an_error_listing_the_registered_ones():
    ds = tl.empty("mem://sched-unknown", overwrite=True)
    ds.create_tensor("x", dtype="int64")
    for workers in (0, 2):
        with pytest.raises(ValueError) as info:
            make_rows().eval(range(3), ds, num_workers=workers, scheduler="spark")
        assert str(info.value) == UNKNOWN.format(
            names="('serial', 'threaded', 'processed', 'ray', 'dask')"
        )
    _register_counting()
    with pytest.raises(ValueError) as info:
        make_rows().eval(range(3), ds, num_workers=2, scheduler="spark")
    assert str(info.value) == UNKNOWN.format(
        names="('serial', 'threaded', 'processed', 'ray', 'dask', 'mine')"
    )
    assert len(ds.x) == 0


def test_registering_checks_the_name_and_the_factory():
    with pytest.raises(TypeError, match="non-empty str"):
        register_scheduler("", SerialScheduler)
    with pytest.raises(TypeError, match="must be callable"):
        register_scheduler("mine", "my_package:Scheduler")  # type: ignore[arg-type]
    assert "mine" not in scheduler_names()


@tl.compute
def copy_x(row, sample_out):
    sample_out.x.append(row.x.numpy())


def test_a_scheduler_of_other_processes_gets_the_input_checks_of_processes():
    """Blocks in other processes cannot read a mem:// input nor a view: refused before any
    work, as for "processed", whatever the scheduler's name."""
    made = _register_counting()
    assert registry.runs_in_other_processes("processed")
    assert not registry.runs_in_other_processes("mine")
    register_scheduler("mine", lambda context: Counting(context), other_processes=True)
    assert registry.runs_in_other_processes("mine")
    source = tl.empty("mem://sched-input", overwrite=True)
    source.create_tensor("x")
    source.x.extend([[1], [2]])
    out = tl.empty("mem://sched-output", overwrite=True)
    out.create_tensor("x")
    with pytest.raises(tl.DatasetError, match="cannot be read by worker processes"):
        copy_x().eval(source, out, num_workers=1, scheduler="mine", progressbar=False)
    assert len(out) == 0 and not made
    register_scheduler("mine", lambda context: Counting(context))  # re-registered: in-process
    assert not registry.runs_in_other_processes("mine")
