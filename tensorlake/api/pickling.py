"""What a pickled dataset carries: where to reopen it, never its rows.

``pickle.dumps(ds)`` stores the dataset's URL and creds, the version it is at (its
branch, or the past commit it views), ``read_only``, the view (rows, group) and the link
creds populated in this session (memory only, as Deep Lake's pickles carry them); loading
it reopens the dataset there, in any process: a ``DataLoader`` worker, a
``ProcessPoolExecutor`` task. Rows written but not stored yet are flushed first, so the
other process sees them. A dataset in memory (``mem://``) exists in one process only and
refuses to be pickled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tensorlake.api.index import Index
from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.engine.format import root
from tensorlake.errors import NotPicklableError
from tensorlake.storage import from_url

__all__ = ["PickledDataset", "pickled", "reopen"]


@dataclass(frozen=True, slots=True)
class PickledDataset:
    """A dataset (or view, group) as it travels to another process."""

    url: str
    creds: dict[str, Any] | None
    read_only: bool
    branch: str
    commit_id: str | None  # a past commit viewed (read-only), else None: the branch
    rows: Any  # Index.rows
    sub: tuple
    group: str
    link_creds: dict[str, dict[str, Any] | None]


def pickled(core: DatasetCore, index: Index, group: str) -> PickledDataset:
    """The state that reopens ``core`` (at ``index``, ``group``) in another process."""
    if core.storage.memory_resident:
        raise NotPicklableError(
            f"The dataset at {core.url} lives in this process's memory and cannot be "
            "pickled for another process. Store it locally or on S3 first "
            "(ds.copy('./local-copy')), or use threads (num_workers=0, a "
            "ThreadPoolExecutor)."
        )
    if core.deleted:
        raise NotPicklableError(f"The dataset at {core.url} was deleted.")
    core.flush()  # what another process reopens is what storage holds
    core.writer.wait()
    return PickledDataset(
        url=core.url,
        creds=core.creds,
        read_only=core.read_only,
        branch=core.branch,
        commit_id=core.commit_id if core.detached else None,
        rows=index.rows,
        sub=index.sub,
        group=group,
        link_creds=dict(core.links.creds),
    )


def reopen(state: PickledDataset) -> tuple[DatasetCore, Index]:
    """The core and index a pickled dataset stands for, opened in this process."""
    storage = from_url(state.url, creds=state.creds, read_only=state.read_only)
    root.check_format(storage)
    core = DatasetCore(
        storage, state.url, state.read_only, state.branch, state.commit_id, state.creds
    )
    for key, creds in state.link_creds.items():
        core.links.set_creds(key, creds)
    return core, Index(state.rows, state.sub)
