"""Moving between versions: checkout (branches and past commits), reset, branch deletion."""

from __future__ import annotations

from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.engine.format import keys, records
from tensorlake.engine.version import refs
from tensorlake.engine.version.commit import commit
from tensorlake.engine.version.gc import gc
from tensorlake.errors import PastVersionError, VersionError

__all__ = ["checkout", "delete_branch", "reset"]


def checkout(core: DatasetCore, ref: str, create: bool = False) -> str:
    """Switch to a branch or a commit; ``create`` starts a new branch from here."""
    if not core.read_only and not core.detached:
        core.flush()
    if create:
        if core.read_only:
            core.check_writable()
        core.take_lock()
        refs.check_branch_name(ref)
        if core.storage.exists(keys.ref_key(ref)):
            raise VersionError(f"Branch '{ref}' already exists; checkout('{ref}') to use it.")
        if not core.detached and core.state.has_head_changes:
            commit(core, f"Auto-commit before checkout to new branch '{ref}'")
        records.create_branch(core.storage, ref, core.commit_id)
        core.open_branch(ref)
        return core.commit_id
    branch, commit_id = refs.resolve_ref(core.storage, ref)
    if branch is not None:
        core.open_branch(branch)
    else:
        core.open_commit(commit_id)
    return core.commit_id


def reset(core: DatasetCore) -> None:
    """Drop every change since the branch's head commit, stored or not, and delete the
    chunks only those changes (or a crashed writer) had written."""
    if core.read_only:
        core.check_writable()
    if core.detached:
        raise PastVersionError(
            f"reset() works on a branch; you are at past commit {core.commit_id[:12]}. "
            f"checkout('{core.branch}') first."
        )
    core.take_lock()
    core.writer.wait()
    records.delete_staging(core.storage, core.branch)
    core.open_branch(core.branch)
    gc(core)


def delete_branch(core: DatasetCore, name: str) -> None:
    core.check_writable()
    if name == core.branch:
        raise VersionError(f"Cannot delete '{name}': it is checked out. checkout() another first.")
    if name == records.DEFAULT_BRANCH:
        raise VersionError(
            f"'{records.DEFAULT_BRANCH}' is the default branch and cannot be deleted."
        )
    records.read_head(core.storage, name)  # raises if there is no such branch
    records.delete_staging(core.storage, name)
    records.delete_branch(core.storage, name)
    gc(core)
