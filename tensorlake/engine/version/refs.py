"""Naming versions: branch names, and resolving a ref (a branch, a commit id or a
unique prefix of one) to the commit it means."""

from __future__ import annotations

import re

from tensorlake.engine.format import keys, records
from tensorlake.errors import VersionError
from tensorlake.storage import Storage

__all__ = ["check_branch_name", "resolve_ref"]

_BRANCH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_COMMIT_ID = re.compile(r"^[0-9a-f]{40}$")


def check_branch_name(name: str) -> None:
    if not isinstance(name, str) or not _BRANCH.match(name) or _COMMIT_ID.match(name):
        raise VersionError(
            f"Invalid branch name {name!r}: use letters, digits, '_', '-', '.' (no '/'), "
            "and not 40 hex digits (that is a commit id)."
        )


def resolve_ref(storage: Storage, ref: str) -> tuple[str | None, str]:
    """``(branch, commit_id)`` for a branch name, or ``(None, id)`` for a commit id or a
    unique prefix of one (at least 6 hex digits)."""
    if not isinstance(ref, str) or not ref:
        raise VersionError(f"A version is a branch name or a commit id, got {ref!r}.")
    if "/" not in ref and storage.exists(keys.ref_key(ref)):
        return ref, records.read_head(storage, ref)
    if re.fullmatch(r"[0-9a-f]{6,40}", ref):
        if len(ref) == 40 and storage.exists(keys.commit_key(ref)):
            return None, ref
        found = [keys.commit_id_of(k) for k in storage.list(keys.COMMITS_PREFIX + ref)]
        if len(found) == 1:
            return None, found[0]
        if len(found) > 1:
            raise VersionError(f"'{ref}' matches {len(found)} commits; give more digits.")
    raise VersionError(
        f"No branch or commit '{ref}' in {storage.url}. Branches: {records.list_branches(storage)}; "
        "see ds.log() for commit ids."
    )
