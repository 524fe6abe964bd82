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


def _stored(core: DatasetCore, ref: str) -> _Version:
    branch, commit_id = refs.resolve_ref(core.storage, ref)
    label = f"{ref} ({commit_id[:12]})" if branch else commit_id[:12]
    return _Version(label, commit_id, _lengths(core, commit_id), Changes())


def _lengths(core: DatasetCore, commit_id: str) -> dict[str, int]:
    manifest = records.read_commit(core.storage, commit_id).manifest
    return {t["meta"]["name"]: int(t["meta"]["length"]) for t in manifest["tensors"]}


def _working(core: DatasetCore) -> _Version:
    if core.detached:
        return _Version(
            core.commit_id[:12], core.commit_id, _lengths(core, core.commit_id), Changes()
        )
    lengths = {name: e.num_rows for name, e in core.engines.items()}
    label = f"the current state of '{core.branch}'"
    return _Version(label, core.commit_id, lengths, core.changes, working=True)


def _ancestry(core: DatasetCore, commit_id: str) -> list[tuple[str, Changes]]:
    """``(commit id, its changes)`` from ``commit_id`` back to the root."""
    out = []
    current: str | None = commit_id
    while current is not None:
        stored = records.read_commit(core.storage, current)
        out.append((current, stored.changes))
        current = stored.commit.parent if stored.commit else None
    return out


def diff(core: DatasetCore, a: str | None = None, b: str | None = None) -> dict[str, Any]:
    """Changes on each side since the common ancestor of versions ``a`` and ``b``.

    ``a`` defaults to the head commit and ``b`` to the current state (uncommitted changes
    included), so ``diff()`` shows what a commit would record.
    """
    side_a = _stored(core, a) if a is not None else _head(core)
    side_b = _stored(core, b) if b is not None else _working(core)
    chain_a = _ancestry(core, side_a.commit_id)
    chain_b = _ancestry(core, side_b.commit_id)
    ids_a = [c for c, _ in chain_a]
    base = next((c for c, _ in chain_b if c in set(ids_a)), None)
    if base is None:
        raise VersionError(f"{side_a.label} and {side_b.label} share no history.")
    base_lengths = _lengths(core, base)
    return {
        "base": base,
        "a": {"version": side_a.label, **_side(side_a, chain_a, base, base_lengths)},
        "b": {"version": side_b.label, **_side(side_b, chain_b, base, base_lengths)},
    }


def _head(core: DatasetCore) -> _Version:
    label = f"{core.commit_id[:12]} (head of '{core.branch}')"
    return _Version(label, core.commit_id, _lengths(core, core.commit_id), Changes())


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
