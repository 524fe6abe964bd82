"""``BranchState``: where a dataset is in its history, as one immutable value.

A commit prepares the next value and installs it; if storing the commit fails, the
previous value goes back in place, whole: no field can be forgotten in a rollback.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from tensorlake.engine.format.changes import Changes

__all__ = ["BranchState"]


@dataclass(frozen=True, slots=True)
class BranchState:
    """The checked-out version and what the branch holds beyond it.

    ``changes`` is the record of rows and info changed since ``commit_id``; the core adds
    to it until a commit gives the next state a fresh one, so a previous state's record
    is never changed after it was replaced.
    """

    branch: str
    commit_id: str  # the head commit (on a branch) or the past commit viewed
    detached: bool = False  # at a past commit: read-only
    changes: Changes = field(default_factory=Changes)
    dirty: bool = False  # changes not flushed yet
    head_changes: bool = False  # anything since the head commit, flushed or not
    staged: bool = False  # a stored staging object continues the head commit
    # table segments named by the head commit and by the stored staging manifest: the
    # garbage of a flush or commit is what neither names any more
    commit_segments: frozenset[str] = frozenset()
    staging_segments: frozenset[str] = frozenset()

    @property
    def has_head_changes(self) -> bool:
        """Whether the branch has changes since its head commit (stored or not)."""
        return self.head_changes or self.dirty

    def evolve(self, **changes: Any) -> BranchState:
        return replace(self, **changes)
