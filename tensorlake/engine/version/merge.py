"""Merging another version into the checked-out branch (Deep Lake's ``ds.merge``).

What the target changed since the common ancestor (``diff``) is applied here: tensors
it created are copied, rows it appended are appended (after this branch's own), rows it
updated are updated. A row both sides updated is a conflict: ``"ours"`` keeps this
branch's value, ``"theirs"`` takes the target's, ``None`` raises ``MergeConflictError``
listing them before anything changes. The result is committed ("Merge <target> into
<branch>").

Rows are matched by their row number (tensorlake keeps no per-row ids), so a merge is
refused where either side removed rows (``pop``, ``clear``) since the ancestor: the
numbers no longer name the same rows. Rows move as their stored bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.engine.core.transfer import blank_meta, copy_rows, with_companions
from tensorlake.engine.version import commit as version_commit
from tensorlake.engine.version import diff as version_diff
from tensorlake.engine.version import refs
from tensorlake.errors import DatasetArgumentError, MergeConflictError, VersionError

__all__ = ["POLICIES", "merge"]

POLICIES = (None, "ours", "theirs")


def merge(
    core: DatasetCore,
    target_id: str,
    conflict_resolution: str | None = None,
    delete_removed_tensors: bool = False,
    force: bool = False,
) -> str | None:
    """Merge ``target_id`` (a branch or commit) into the checked-out branch; returns the
    merge commit's id (None when the target adds nothing)."""
    if conflict_resolution not in POLICIES:
        raise DatasetArgumentError(
            f"conflict_resolution must be None, 'ours' or 'theirs', got {conflict_resolution!r}."
        )
    core.check_writable()
    core.flush()
    _, target_commit = refs.resolve_ref(core.storage, target_id)
    d = version_diff.diff(core, target_commit, None)
    theirs, ours = d["a"], d["b"]
    if not _has_changes(theirs):
        return None
    _refuse_removed_rows(theirs, ours, target_id)
    target = DatasetCore(core.storage, core.url, True, commit_id=target_commit, creds=core.creds)
    renamed = theirs["tensors_renamed"]
    if renamed and not force:
        raise MergeConflictError(
            f"Tensors were renamed on '{target_id}' ({renamed}): rename them here the same "
            "way first, or pass force=True to add them as new tensors.",
            conflicts={new: None for new in renamed.values()},
        )
    plan = _plan(core, target, theirs, ours, conflict_resolution)
    with core.batch():
        created = [n for n in theirs["tensors_created"] if n not in core.engines]
        created += [n for n in renamed.values() if n not in core.engines]
        _copy_new_tensors(core, target, created)
        for name, (appended, updated) in plan.items():
            _apply(core, target, name, appended, updated)
        if delete_removed_tensors:
            for name in theirs["tensors_deleted"]:
                if name in core.engines:
                    core.delete_tensor(name)
        core.changed()
    return version_commit.commit(core, f"Merge {target_id} into {core.branch}", allow_empty=True)


def _has_changes(side: dict[str, Any]) -> bool:
    return bool(side["tensors_created"] or side["tensors_deleted"] or side["tensors"])


def _refuse_removed_rows(theirs: dict[str, Any], ours: dict[str, Any], target_id: str) -> None:
    for label, side in (("the target", theirs), ("this branch", ours)):
        popped = [n for n, t in side["tensors"].items() if t.get("rows_deleted")]
        if popped:
            raise VersionError(
                f"Cannot merge '{target_id}': {label} removed rows of {popped} since the "
                "common ancestor, so row numbers no longer name the same rows on both "
                "sides. Copy the rows you need instead (ds.extend(...) from a view of the "
                "target), or merge before popping."
            )


def _plan(
    core: DatasetCore,
    target: DatasetCore,
    theirs: dict[str, Any],
    ours: dict[str, Any],
    policy: str | None,
) -> dict[str, tuple[list[int], list[int]]]:
    """Per common tensor: target rows to append, target rows to write over ours. Raises
    ``MergeConflictError`` (policy None) before anything changes."""
    plan: dict[str, tuple[list[int], list[int]]] = {}
    conflicts: dict[str, list[int]] = {}
    for name, change in theirs["tensors"].items():
        if change["created"] or name not in core.engines or name not in target.engines:
            continue
        mine = ours["tensors"].get(name) or {}
        appended = list(range(*change["rows_added"])) if change["rows_added"] else []
        both = sorted(set(change["rows_updated"]) & set(mine.get("rows_updated") or ()))
        if both:
            conflicts[name] = both
        updated = [r for r in change["rows_updated"] if policy == "theirs" or r not in both]
        _check_class_names(core, target, name)
        if appended or updated:
            plan[name] = (appended, updated)
    if conflicts and policy is None:
        shown = "; ".join(f"'{n}' rows {rows[:10]}" for n, rows in conflicts.items())
        raise MergeConflictError(
            f"Both sides changed the same rows: {shown}. Pass conflict_resolution='ours' "
            "to keep this branch's values or 'theirs' to take the target's.",
            conflicts=dict(conflicts),
        )
    return plan


def _check_class_names(core: DatasetCore, target: DatasetCore, name: str) -> None:
    """Stored class ids mean the same on both sides when one list of names extends the
    other; the longer one is kept."""
    mine = core.engine(name).meta.info.get("class_names")
    theirs = target.engine(name).meta.info.get("class_names")
    if mine is None or theirs is None or mine == theirs:
        return
    short, long = (mine, theirs) if len(mine) <= len(theirs) else (theirs, mine)
    if list(long[: len(short)]) != list(short):
        raise MergeConflictError(
            f"Tensor '{name}' has different class names on the two sides ({mine} here, "
            f"{theirs} there): make one list extend the other before merging.",
            conflicts={name: None},
        )
    core.engine(name).meta.info["class_names"] = list(long)


def _copy_new_tensors(core: DatasetCore, target: DatasetCore, names: list[str]) -> None:
    if not names:
        return
    every = with_companions(target, names)
    core.add_tensors([blank_meta(target.engine(n).meta, n) for n in every])
    for name in every:
        source = target.engine(name)
        copy_rows(source, core.engine(name), np.arange(source.num_rows))


def _apply(
    core: DatasetCore, target: DatasetCore, name: str, appended: list[int], updated: list[int]
) -> None:
    for tensor in with_companions(target, [name]):
        if tensor not in core.engines:
            continue
        source, engine = target.engine(tensor), core.engine(tensor)
        rows = [r for r in appended if r < source.num_rows]
        if rows:
            copy_rows(source, engine, rows)
        fixes = [r for r in updated if r < source.num_rows and r < engine.num_rows]
        if fixes:
            pending = engine.new_pending()
            for row, stored in zip(fixes, source.read_stored(fixes)):
                engine.update_encoded(row, stored, pending)
            core.changes.rows_updated(tensor, fixes)
