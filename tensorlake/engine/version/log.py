"""The commit log: commits from the checked-out one back to the first.

Every dataset is created with a root commit (empty, without a parent: ``format/root.py``)
so that ``ds.commit_id`` names a real version from the start. The log leaves it out, as
Deep Lake lists no commit before the first ``commit()``: a fresh dataset's log is empty,
and after n commits it lists n.
"""

from __future__ import annotations

import datetime
from typing import Any

from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.engine.format import records

__all__ = ["commits", "format_log"]


def commits(core: DatasetCore) -> list[dict[str, Any]]:
    """Commits from the checked-out one back to the first, newest first (not the root
    commit the dataset was created with)."""
    out = []
    commit_id: str | None = core.commit_id
    while commit_id is not None:
        c = records.read_commit(core.storage, commit_id).commit
        assert c is not None
        if c.parent is None:  # the root commit written at creation
            break
        out.append(
            {
                "commit": c.id,
                "author": c.author,
                "time": datetime.datetime.fromtimestamp(c.time),
                "message": c.message,
                "branch": c.branch,
                **c.extra,
            }
        )
        commit_id = c.parent
    return out


def format_log(core: DatasetCore) -> str:
    lines = ["---------------", "tensorlake version log", "---------------", ""]
    where = f"commit {core.commit_id} (detached, read-only)" if core.detached else core.branch
    lines.append(f"Current branch: {where}")
    if not core.detached and core.state.has_head_changes:
        lines.append("** There are uncommitted changes on this branch.")
    listed = commits(core)
    if not listed:
        lines += ["", "No commits yet: ds.commit(message) records one."]
    for c in listed:
        lines.append("")
        lines.append(f"Commit : {c['commit']} ({c['branch']})")
        lines.append(f"Author : {c['author']}")
        lines.append(f"Time   : {c['time']:%Y-%m-%d %H:%M:%S}")
        lines.append(f"Message: {c['message'] if c['message'] is not None else '(none)'}")
        if "samples_processed" in c:
            lines.append(f"Samples: {c['samples_processed']} processed")
    return "\n".join(lines)
