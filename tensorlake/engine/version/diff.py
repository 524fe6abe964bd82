"""The diff between two versions: what each side changed since their common ancestor.

Tensors created or deleted and rows appended are read off the manifests (names and
lengths); rows rewritten in place and info edits come from the ``Changes`` record each
commit and staging state carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.engine.format import records
from tensorlake.engine.format.changes import DATASET_INFO, Changes
from tensorlake.engine.version import refs
from tensorlake.errors import VersionError

__all__ = ["diff", "format_diff"]


@dataclass(slots=True)
class _Version:
    """What diff needs of a version: tensor lengths, info, and its own changes."""

    label: str
    commit_id: str  # the commit itself, or the head a working state builds on
    lengths: dict[str, int]
    changes: Changes  # changes of the working state (empty for a commit)
    working: bool = False


class _Commits:
    """The commit objects one diff reads, each read once."""

    def __init__(self, core: DatasetCore) -> None:
        self._storage = core.storage
        self._read: dict[str, records.StoredVersion] = {}

    def __call__(self, commit_id: str) -> records.StoredVersion:
        stored = self._read.get(commit_id)
        if stored is None:
            stored = self._read[commit_id] = records.read_commit(self._storage, commit_id)
        return stored

    def lengths(self, commit_id: str) -> dict[str, int]:
        manifest = self(commit_id).manifest
        return {t["meta"]["name"]: int(t["meta"]["length"]) for t in manifest["tensors"]}

    def parent(self, commit_id: str) -> str | None:
        commit = self(commit_id).commit
        return commit.parent if commit else None


def _stored(core: DatasetCore, commits: _Commits, ref: str) -> _Version:
    branch, commit_id = refs.resolve_ref(core.storage, ref)
    label = f"{ref} ({commit_id[:12]})" if branch else commit_id[:12]
    return _Version(label, commit_id, commits.lengths(commit_id), Changes())


def _working(core: DatasetCore, commits: _Commits) -> _Version:
    if core.detached:
        return _Version(
            core.commit_id[:12], core.commit_id, commits.lengths(core.commit_id), Changes()
        )
    lengths = {name: e.num_rows for name, e in core.engines.items()}
    label = f"the current state of '{core.branch}'"
    return _Version(label, core.commit_id, lengths, core.changes, working=True)


def _head(core: DatasetCore, commits: _Commits) -> _Version:
    label = f"{core.commit_id[:12]} (head of '{core.branch}')"
    return _Version(label, core.commit_id, commits.lengths(core.commit_id), Changes())


Chain = list[tuple[str, Changes]]


def _to_common_ancestor(commits: _Commits, a: str, b: str) -> tuple[Chain, Chain, str | None]:
    """``(commit id, its changes)`` from ``a`` and from ``b`` back to their nearest common
    ancestor (included), and that ancestor (None: no shared history).

    Both histories are walked back one commit at a time in turn, and the walk stops at
    the first commit one side reaches that the other has passed. Each commit has one
    parent, so that commit is the nearest common ancestor: a diff reads the commits
    between its sides and their ancestor (on the shorter side at most as many again),
    not the whole history back to the root.
    """
    chains: tuple[Chain, Chain] = ([], [])
    passed: tuple[dict[str, int], dict[str, int]] = ({}, {})  # commit id -> place in chain
    current: list[str | None] = [a, b]
    while current[0] is not None or current[1] is not None:
        for side in (0, 1):
            commit_id = current[side]
            if commit_id is None:
                continue
            chains[side].append((commit_id, commits(commit_id).changes))
            other = 1 - side
            if commit_id in passed[other]:
                del chains[other][passed[other][commit_id] + 1 :]
                return chains[0], chains[1], commit_id
            passed[side][commit_id] = len(chains[side]) - 1
            current[side] = commits.parent(commit_id)
    return chains[0], chains[1], None


def diff(core: DatasetCore, a: str | None = None, b: str | None = None) -> dict[str, Any]:
    """Changes on each side since the common ancestor of versions ``a`` and ``b``.

    ``a`` defaults to the head commit and ``b`` to the current state (uncommitted changes
    included), so ``diff()`` shows what a commit would record. What it reads grows with
    the commits between the sides and their ancestor, not with the whole history.
    """
    commits = _Commits(core)
    side_a = _stored(core, commits, a) if a is not None else _head(core, commits)
    side_b = _stored(core, commits, b) if b is not None else _working(core, commits)
    chain_a, chain_b, base = _to_common_ancestor(commits, side_a.commit_id, side_b.commit_id)
    if base is None:
        raise VersionError(f"{side_a.label} and {side_b.label} share no history.")
    base_lengths = commits.lengths(base)
    return {
        "base": base,
        "a": {"version": side_a.label, **_side(side_a, chain_a, base, base_lengths)},
        "b": {"version": side_b.label, **_side(side_b, chain_b, base, base_lengths)},
    }


def _side(
    version: _Version,
    chain: list[tuple[str, Changes]],
    base: str,
    base_lengths: dict[str, int],
) -> dict[str, Any]:
    changes = Changes()
    changes.merge(version.changes)
    for commit_id, c in chain:
        if commit_id == base:
            break
        changes.merge(c)
    renamed = {n: b for n, b in changes.renamed.items() if n in version.lengths}
    sources = set(renamed.values())

    def base_name(name: str) -> str | None:  # None: a tensor the base does not have
        if name in renamed:
            return renamed[name]
        return None if name in sources else name

    tensors: dict[str, Any] = {}
    created = []
    for name, length in version.lengths.items():
        was = base_name(name)
        old = base_lengths.get(was) if was is not None else None
        deleted = min(changes.deleted.get(name, 0), old or 0)
        start = 0 if old is None else old - deleted
        updated = sorted(r for r in changes.updated.get(name, ()) if r < start)
        entry = {
            "created": old is None,
            "renamed_from": was if old is not None and was != name else None,
            "rows_added": [start, length] if length > start else None,
            "rows_deleted": deleted,
            "rows_updated": updated,
            "info_updated": name in changes.info,
        }
        if old is None:
            created.append(name)
        if any(entry[k] for k in entry):
            tensors[name] = entry
    kept = {base_name(n) for n in version.lengths}
    return {
        "tensors_created": created,
        "tensors_deleted": [n for n in base_lengths if n not in kept],
        "tensors_renamed": {
            t["renamed_from"]: n for n, t in tensors.items() if t["renamed_from"] is not None
        },
        "info_updated": DATASET_INFO in changes.info,
        "tensors": tensors,
    }


def format_diff(d: dict[str, Any]) -> str:
    lines = [f"Diff against common ancestor {d['base'][:12]}"]
    for side in ("a", "b"):
        s = d[side]
        lines.append("")
        lines.append(f"{s['version']}:")
        before = len(lines)
        if s["info_updated"]:
            lines.append("  dataset info updated")
        for name in s["tensors_deleted"]:
            lines.append(f"  - tensor '{name}' deleted")
        for name, t in s["tensors"].items():
            parts = ["created"] if t["created"] else []
            if t.get("renamed_from"):
                parts.append(f"renamed from '{t['renamed_from']}'")
            if t.get("rows_deleted"):
                parts.append(f"{t['rows_deleted']} rows deleted")
            if t["rows_added"]:
                lo, hi = t["rows_added"]
                parts.append(f"{hi - lo} rows added ({lo}-{hi - 1})")
            if t["rows_updated"]:
                shown = ", ".join(map(str, t["rows_updated"][:10]))
                more = ", ..." if len(t["rows_updated"]) > 10 else ""
                parts.append(f"{len(t['rows_updated'])} rows updated ({shown}{more})")
            if t["info_updated"]:
                parts.append("info updated")
            lines.append(f"  {'+' if t['created'] else '*'} tensor '{name}': {'; '.join(parts)}")
        if len(lines) == before:
            lines.append("  no changes")
    return "\n".join(lines)
