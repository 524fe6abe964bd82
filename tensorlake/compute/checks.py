"""The checks ``eval`` makes of its arguments before it changes anything.

Each raises the error a caller can act on (``TypeError``/``ValueError`` for an argument
of the wrong kind, ``DatasetError`` for a dataset that cannot take part), with what to
do instead.
"""

from __future__ import annotations

from typing import Any

from tensorlake.api.dataset import Dataset, core_of
from tensorlake.compute.schedulers.dask_scheduler import DaskScheduler, distributed_module
from tensorlake.compute.schedulers.ray_scheduler import RayScheduler, ray_module
from tensorlake.compute.schedulers.registry import runs_in_other_processes, scheduler_factory
from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.errors import DatasetError

__all__ = [
    "check_checkpoint_interval",
    "check_input",
    "check_scheduler",
    "check_target",
    "input_spec",
]


def check_target(ds_out: Any, check_lengths: bool = True) -> DatasetCore:
    """The core of ``ds_out``: a whole, writable dataset with tensors (of one length,
    with ``check_lengths``)."""
    if not isinstance(ds_out, Dataset):
        raise TypeError(f"ds_out must be a tensorlake Dataset, got {type(ds_out).__name__}.")
    if ds_out.is_view or ds_out.group_index:
        raise DatasetError("ds_out must be a whole dataset, not a view or a group.")
    core = core_of(ds_out)
    core.check_writable()
    if not core.engines:
        raise DatasetError(
            "ds_out has no tensors: create them (ds.create_tensor(...)) before eval()."
        )
    visible = {k: e.num_rows for k, e in core.engines.items() if not e.meta.hidden}
    if check_lengths and len(set(visible.values())) > 1:
        raise DatasetError(
            f"ds_out's tensors have different lengths ({visible}): the rows eval() appends "
            "would not line up. Make them equal (ds.max_view / padding), or pass "
            "check_lengths=False to append anyway."
        )
    return core


def check_input(
    data_in: Any, scheduler: str, num_workers: int, core: DatasetCore
) -> tuple[int, bool]:
    """The input's length and whether it is a tensorlake dataset."""
    dataset_in = isinstance(data_in, Dataset)
    if isinstance(data_in, (str, bytes)) or not hasattr(data_in, "__len__"):
        raise TypeError(
            "data_in must be a sized iterable (a list, range, numpy array or tensorlake "
            f"dataset), got {type(data_in).__name__}. Wrap a generator in list()."
        )
    if dataset_in and core_of(data_in) is core:
        raise DatasetError("data_in and ds_out are the same dataset; write to another one.")
    if (
        dataset_in
        and runs_in_other_processes(scheduler)
        and num_workers > 0
        and not core_of(data_in).storage.shared_across_processes
    ):
        raise DatasetError(
            "A mem:// input dataset cannot be read by worker processes; use "
            "scheduler='threaded' or store the input locally."
        )
    return len(data_in), dataset_in


def check_scheduler(scheduler: str, num_workers: int = 0) -> None:
    """``scheduler`` is registered (``ValueError`` naming the registered ones if not),
    whatever the number of workers; the engine Ray or Dask needs is installed
    (``ImportError`` naming the extra) before anything changes."""
    factory = scheduler_factory(scheduler)
    if num_workers > 0 and factory is RayScheduler:
        ray_module()
    elif num_workers > 0 and factory is DaskScheduler:
        distributed_module()


def check_checkpoint_interval(checkpoint_interval: Any) -> None:
    """``checkpoint_interval`` is an int >= 0 (0: no checkpoints)."""
    if not isinstance(checkpoint_interval, int) or checkpoint_interval < 0:
        raise ValueError(f"checkpoint_interval must be an int >= 0, got {checkpoint_interval!r}.")


def input_spec(
    data_in: Any, dataset_in: bool, scheduler: str, num_workers: int, pad: bool = False
) -> tuple[str, dict | None, str, bool] | None:
    """Where worker processes open an input dataset themselves (url, creds, commit id,
    whether padded to its ``max_len``); None when the input is not a dataset or the
    blocks run in this process."""
    if not dataset_in or not runs_in_other_processes(scheduler) or num_workers <= 0:
        return None
    if data_in.is_view:
        raise DatasetError(
            "A view as data_in works with scheduler='threaded' or 'serial'; with processes, "
            "pass the whole dataset or copy the view first."
        )
    core = core_of(data_in)
    if core.detached:  # a past commit: exactly that
        return core.url, core.creds, core.commit_id, pad
    if not core.read_only:
        core.flush()  # rows not yet stored would be invisible to the workers
    return core.url, core.creds, core.branch, pad  # the branch: its uncommitted rows too
