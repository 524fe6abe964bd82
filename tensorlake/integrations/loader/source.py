"""What a loader's worker process opens: the same version of the same dataset, read-only.

A worker reopens the dataset from its URL (with the creds it was opened with, and the
link creds populated in this session: memory only, never stored) at the version the
loader was made on: the commit, or the branch when its staged changes are part of what
is read. A dataset in memory cannot be reopened elsewhere: forked workers read the
copy they inherit. A loader without workers reads the caller's dataset itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tensorlake.api.dataset import Dataset, core_of
from tensorlake.api.factory import load
from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.errors import DatasetError

__all__ = ["Source"]


@dataclass
class Source:
    """Where a worker finds the dataset a loader reads."""

    url: str
    creds: dict[str, Any] | None
    version: str
    group: str
    link_creds: dict[str, dict[str, Any] | None]
    inherited: Dataset | None = None  # read in this process, or a memory dataset (forks)

    @classmethod
    def of(cls, ds: Dataset, workers: bool) -> Source:
        """The source of ``ds`` (any view or group of it). ``workers``: other processes
        will open it, so what they read must be stored."""
        core = core_of(ds)
        state = core.state
        memory = core.storage.memory_resident
        if workers and state.dirty and not memory:
            raise DatasetError(
                "The dataset has changes that are not stored yet, which loader workers "
                "(other processes) cannot see: call ds.flush() or ds.commit() first, or "
                "use num_workers=0."
            )
        version = core.branch if state.head_changes and not core.detached else core.commit_id
        return cls(
            url=core.url,
            creds=core.creds,
            version=version,
            group=ds.group_index,
            link_creds=dict(core.links.creds),
            # read in this process, or by forked workers: the very dataset, unflushed
            # rows included
            inherited=ds if memory or not workers else None,
        )

    def open(self) -> DatasetCore:
        """The dataset's core, opened read-only in this process (or inherited)."""
        if self.inherited is not None:
            return core_of(self.inherited)
        ds = load(self.url, read_only=True, creds=self.creds, version=self.version)
        core = core_of(ds)
        for key, creds in self.link_creds.items():
            core.links.set_creds(key, creds)
        return core

    def __getstate__(self) -> dict[str, Any]:
        if self.inherited is not None:
            raise DatasetError(
                "A dataset in memory (mem://) can only be read by forked loader workers: "
                "use multiprocessing_context='fork' (the default on Linux), num_workers=0, "
                "or store the dataset locally."
            )
        return {k: getattr(self, k) for k in self.__dataclass_fields__}
