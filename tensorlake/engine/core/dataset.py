"""``DatasetCore``: the state behind a ``Dataset`` and all its views: tensors, writes, flushes.

Every view of a dataset shares one core. Writes to several tensors are validated on all
of them before any is changed, which is what makes ``ds.append(row)`` all-or-nothing.
Where the core is in the version history is one immutable ``BranchState``; the version
operations (``engine/version/``: commit, checkout, reset ...) replace it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from tensorlake import config
from tensorlake.engine.core.delete import delete_dataset
from tensorlake.engine.core.garbage import GarbageBin, write_record
from tensorlake.engine.core.names import check_name, parents
from tensorlake.engine.core.state import BranchState
from tensorlake.engine.format import records
from tensorlake.engine.format.changes import DATASET_INFO, Changes
from tensorlake.engine.format.chunk_table import ChunkTable
from tensorlake.engine.format.manifest import Manifest, TensorMeta, TensorState
from tensorlake.engine.format.segments import ManifestStore, segment_set
from tensorlake.engine.htypes.arguments import new_tensor_metas
from tensorlake.engine.htypes.base import UNSET
from tensorlake.engine.links.companions import companion_names
from tensorlake.engine.links.managed import MANAGED_CREDS_KEYS, check_env_name_free
from tensorlake.engine.links.reader import LinkReader, check_policy
from tensorlake.engine.links.resolver import LinkResolver
from tensorlake.engine.lock.writer_lock import WriterLock, check_lock_mode
from tensorlake.engine.tensor.append import Fill, append_columns
from tensorlake.engine.tensor.block import BlockDescriptor, remap_class_labels
from tensorlake.engine.tensor.chunk_io import ChunkCache, ChunkWriter
from tensorlake.engine.tensor.engine import TensorEngine
from tensorlake.engine.tensor.update import update_column
from tensorlake.errors import (
    DatasetError,
    FormatError,
    PastVersionError,
    ReadOnlyError,
    StorageError,
    TensorNotFoundError,
    VersionError,
)
from tensorlake.storage import Storage

__all__ = ["DatasetCore"]

_OPEN_ATTEMPTS = 4  # reads of a branch that keeps moving under a reader


class _BranchMoved(Exception):
    """The branch's head changed while its state was read: read it again."""


class DatasetCore:
    """Tensors of the checked-out version, their engines, and the write protocol.

    A core is at a branch (writable: its head commit plus staged changes) or, detached,
    at a past commit (read-only).
    """

    def __init__(
        self,
        storage: Storage,
        url: str,
        read_only: bool,
        branch: str = records.DEFAULT_BRANCH,
        commit_id: str | None = None,
        creds: dict | None = None,
        lock: str = "writer",
    ) -> None:
        self.storage = storage
        # "none": no writer lock is ever taken (LOCK_MODES; unsafe with two writers)
        self.lock_mode = check_lock_mode(lock)
        self.url = url
        self.creds = creds  # to open the same storage elsewhere (compute workers)
        self.read_only = read_only
        self.writer = ChunkWriter(storage, keep_failed=True)
        self.cache = ChunkCache()
        self.store = ManifestStore(storage)
        self.lock: WriterLock | None = None  # taken on the first write, kept until close()
        self.links = LinkResolver([])  # creds populated in this session survive checkouts
        self.state = BranchState(branch, "")
        self.info: dict[str, Any] = {}
        self.groups: list[str] = []
        self.settings: dict[str, Any] = {}
        self.engines: dict[str, TensorEngine] = {}
        self._garbage: list[str] = []  # chunks of deleted tensors, removed after the manifest
        # objects no stored manifest names any more, deleted once past the grace
        self.bin = GarbageBin()
        self._batch_depth = 0
        self.deleted = False  # set by delete(): no write may recreate objects
        if commit_id is None:
            self.open_branch(branch)
        else:
            self.open_commit(commit_id)

    # -- where the core is ----------------------------------------------------------------
    @property
    def branch(self) -> str:
        return self.state.branch

    @property
    def commit_id(self) -> str:
        return self.state.commit_id

    @property
    def detached(self) -> bool:
        return self.state.detached

    @property
    def changes(self) -> Changes:
        return self.state.changes

    def open_branch(self, branch: str) -> None:
        """Check out ``branch`` as storage holds it: its head commit and staged changes.

        A writer in another process may replace the branch's manifest while it is read
        here: an object it names then found missing is read again from the branch's new
        state (up to a few times), never reported as damage while the branch moves."""
        self.writer.forget_failed()  # the rows of puts that failed are dropped with the state
        for attempt in range(_OPEN_ATTEMPTS):
            seen: list[Any] = []
            try:
                self._open_branch(branch, seen)
                return
            except _BranchMoved:
                continue
            except (FormatError, VersionError):
                if attempt == _OPEN_ATTEMPTS - 1 or self._branch_version(branch) == seen:
                    raise  # the branch did not move: the objects really are missing
        self._open_branch(branch, [], settle=False)  # it kept moving: take a state as read

    def _branch_version(self, branch: str) -> list[Any]:
        """The branch's head and staged manifest as stored now (did it move?)."""
        head = records.read_head(self.storage, branch)
        staged = records.current_staging(self.storage, branch, head)
        return [head, staged.manifest if staged is not None else None]

    def _open_branch(self, branch: str, seen: list[Any], settle: bool = True) -> None:
        head = records.read_head(self.storage, branch)
        seen.append(head)
        committed = records.read_commit(self.storage, head).manifest
        staged = records.current_staging(self.storage, branch, head)
        seen.append(staged.manifest if staged is not None else None)
        if settle and staged is None and records.read_head(self.storage, branch) != head:
            # a commit moved the branch and dropped its staging object between our reads:
            # the head read first is older than what the branch held a moment ago
            raise _BranchMoved
        current = staged.manifest if staged is not None else committed
        self._install(
            self.store.load(current),
            BranchState(
                branch,
                head,
                changes=staged.changes if staged is not None else Changes(),
                head_changes=staged is not None,
                staged=staged is not None,
                commit_segments=segment_set(committed),
                staging_segments=segment_set(staged.manifest) if staged else frozenset(),
            ),
        )

    def open_commit(self, commit_id: str) -> None:
        """Check out a past commit, read-only."""
        stored = records.read_commit(self.storage, commit_id)
        assert stored.commit is not None
        self._install(
            self.store.load(stored.manifest),
            BranchState(
                stored.commit.branch,
                commit_id,
                detached=True,
                commit_segments=segment_set(stored.manifest),
            ),
        )

    def _install(self, manifest: Manifest, state: BranchState) -> None:
        """Make ``manifest`` the checked-out state (discarding any unflushed state)."""
        self.state = state
        self.info = manifest.info
        self.groups = manifest.groups
        self.links.creds_keys = manifest.creds_keys
        self.settings = manifest.settings
        self.links.set_managed(
            frozenset(self.settings.get(MANAGED_CREDS_KEYS, ())) & set(manifest.creds_keys)
        )
        self.engines = {
            name: self._new_engine(s.meta, s.table) for name, s in manifest.tensors.items()
        }
        self._garbage = []

    # -- guards ---------------------------------------------------------------------
    def check_writable(self) -> None:
        if self.deleted:
            raise DatasetError(f"The dataset at {self.url} was deleted; it can change no more.")
        if self.read_only:
            raise ReadOnlyError(
                f"The dataset at {self.url} is open read-only. Open it with "
                "tl.load(path, read_only=False) to modify it."
            )
        if self.detached:
            raise PastVersionError(
                f"Commit {self.commit_id[:12]} is a past version and cannot change. "
                f"checkout('{self.branch}') to write on its branch, or "
                "checkout('<new-branch>', create=True) to start a branch from here."
            )
        self.take_lock()

    def set_read_only(self, read_only: bool) -> None:
        """``True``: store what was written, release the writer lock, refuse writes.
        ``False``: take the lock again (``LockedError`` if another process holds it) and
        reopen the version as storage now holds it (another writer may have changed it)."""
        if read_only:
            self.flush()
            self.writer.wait()
            self.keep_garbage_record()
            if self.lock is not None:
                self.lock.release()
                self.lock = None
            self.read_only = True
            return
        if self.deleted:
            self.check_writable()  # raises: the dataset is gone
        storage = self.storage.with_read_only(False) if self.storage.read_only else self.storage
        lock = WriterLock(storage)
        if self.lock_mode != "none":
            lock.acquire()
        try:
            self.writer.close()
            self.storage, self.writer = storage, ChunkWriter(storage, keep_failed=True)
            self.store = ManifestStore(storage)
            self.cache.clear()
            if self.detached:
                self.open_commit(self.commit_id)
            else:
                self.open_branch(self.branch)
        except BaseException:
            lock.release()
            raise
        self.lock = lock if self.lock_mode != "none" else None
        self.read_only = False

    def take_lock(self) -> None:
        """Hold the dataset's writer lock (raises ``LockedError`` if another process does;
        nothing with ``lock="none"``)."""
        if self.lock_mode == "none":
            return
        if self.lock is None:
            lock = WriterLock(self.storage)
            lock.acquire()
            self.lock = lock
        else:
            self.lock.check()

    def engine(self, name: str) -> TensorEngine:
        try:
            return self.engines[name]
        except KeyError:
            raise TensorNotFoundError(
                f"No tensor '{name}' in the dataset. Tensors: {sorted(self.engines) or 'none'}."
            ) from None

    # -- batching and change tracking -------------------------------------------------
    def begin_batch(self) -> None:
        """Writes until the matching ``end_batch`` are flushed once, at its end."""
        self._batch_depth += 1

    def end_batch(self, flush: bool = True) -> None:
        self._batch_depth -= 1
        if self._batch_depth == 0 and flush:
            self.flush()

    @contextmanager
    def batch(self) -> Iterator[None]:
        self.begin_batch()
        try:
            yield
        finally:
            self.end_batch()

    def changed(self) -> None:
        """Record a mutation; outside a batch it is flushed at once."""
        state = self.state
        if not (state.dirty and state.head_changes):
            self.state = state.evolve(dirty=True, head_changes=True)
        if self._batch_depth == 0:
            self.flush()

    def info_changed(self, tensor: str = DATASET_INFO) -> None:
        self.changes.info_updated(tensor)
        self.changed()

    def add_creds_key(self, key: str, managed: bool | None = None) -> None:
        """Let links name the credentials ``key`` (the name is stored, never a secret).

        ``managed`` True or False makes a key (new or known) managed or not: each process
        then resolves it itself (``engine/links/managed.py``); None leaves a known key as
        it is (a new one unmanaged).
        """
        self.check_writable()
        links = self.links
        if managed:
            check_env_name_free(key, links.managed)
        new = key not in links.creds_keys
        if new:
            links.creds_keys.append(key)
        if managed is not None and managed != (key in links.managed):
            keys = links.managed | {key} if managed else links.managed - {key}
            # the stored form: a setting, which a tensorlake without managed keys keeps
            # and ignores (a sorted list: the same keys, the same bytes)
            if keys:
                self.settings[MANAGED_CREDS_KEYS] = sorted(keys)
            else:
                self.settings.pop(MANAGED_CREDS_KEYS, None)
            links.set_managed(frozenset(keys))
        elif not new:
            return
        self.changed()

    def set_link_policy(self, policy: str) -> None:
        self.check_writable()
        self.settings["link_policy"] = check_policy(policy)
        self.changed()

    @property
    def link_policy(self) -> str:
        return self.settings.get("link_policy", "warn")

    # -- schema ---------------------------------------------------------------------
    def create_tensor(
        self,
        name: str,
        htype: str = "generic",
        dtype: Any = None,
        sample_compression: Any = UNSET,
        chunk_compression: str | None = None,
        max_chunk_size: int | None = None,
        hidden: bool = False,
        exist_ok: bool = False,
        **kwargs: Any,
    ) -> TensorEngine:
        self.check_writable()
        check_name(name)
        if name in self.engines:
            if exist_ok:
                return self.engines[name]
            raise DatasetError(f"Tensor '{name}' already exists. Pass exist_ok=True to reuse it.")
        if name in self.groups:
            raise DatasetError(f"'{name}' is a group; a tensor cannot have the same name.")
        for parent in parents(name):
            if parent in self.engines:
                raise DatasetError(f"Cannot create '{name}': '{parent}' is a tensor, not a group.")
        # every argument is checked (htypes/arguments.py) before anything is created
        meta, companions = new_tensor_metas(
            name,
            htype,
            dtype,
            sample_compression,
            chunk_compression,
            max_chunk_size,
            hidden,
            **kwargs,
        )
        taken = [c.name for c in companions if c.name in self.engines]
        if taken:
            raise DatasetError(f"Cannot create '{name}': its hidden tensors {taken} exist.")
        for companion in companions:
            self.engines[companion.name] = self._new_engine(companion)
        engine = self._new_engine(meta)
        self.engines[name] = engine
        for parent in parents(name):
            if parent not in self.groups:
                self.groups.append(parent)
        self.changed()
        return engine

    def _new_engine(self, meta: TensorMeta, table: ChunkTable | None = None) -> TensorEngine:
        table = table if table is not None else ChunkTable()
        return TensorEngine(self.storage, meta, table, self.writer, self.cache, self.links)

    def new_engine(self, meta: TensorMeta) -> TensorEngine:
        """An engine for a tensor of no rows yet, not part of the dataset."""
        return self._new_engine(meta)

    def add_tensors(self, metas: Sequence[TensorMeta]) -> None:
        """Add tensors of no rows with these metas, as they are (``create_tensor_like``,
        copies); their groups are created."""
        self.check_writable()
        for meta in metas:
            check_name(meta.name)
            if meta.name in self.engines or meta.name in self.groups:
                raise DatasetError(
                    f"Tensor '{meta.name}' already exists. Pick another name, or delete it first."
                )
        for meta in metas:
            self.engines[meta.name] = self._new_engine(meta)
            for parent in parents(meta.name):
                if parent not in self.groups:
                    self.groups.append(parent)
        self.changed()

    def replace_engine(self, name: str, engine: TensorEngine) -> None:
        """Make ``engine`` tensor ``name``'s (a rechunked copy); the chunks only the old
        one named are deleted after the next manifest."""
        self._garbage.extend(self.engines[name].staged_chunk_keys())
        self._garbage.extend(self.engines[name].take_garbage())
        self.engines[name] = engine

    def create_group(self, name: str) -> None:
        self.check_writable()
        check_name(name)
        if name in self.engines:
            raise DatasetError(f"'{name}' is a tensor; a group cannot have the same name.")
        for g in (*parents(name), name):
            if g not in self.groups:
                self.groups.append(g)
        self.changed()

    def delete_tensor(self, name: str) -> None:
        self.check_writable()
        engine = self.engine(name)
        hidden = [c for c in companion_names(engine.meta.extra) if c in self.engines]
        for victim in [name, *hidden]:
            self._garbage.extend(self.engines.pop(victim).staged_chunk_keys())
            self.changes.tensor_deleted(victim)
        self.changed()

    # -- writes ---------------------------------------------------------------------
    def append_rows(
        self,
        columns: Mapping[str, Sequence[Any]],
        skip_ok: bool = False,
        scope: Sequence[str] | None = None,
        fill: Fill | None = None,
    ) -> None:
        """Append the same number of rows to several tensors, all or nothing.

        Unless ``skip_ok``, every visible tensor in ``scope`` (default: all) needs values;
        ``fill`` (``append_empty``) pads the others, and shorter columns, with empty rows.
        """
        self.check_writable()
        for name in columns:
            self.engine(name)
        append_columns(self.engines, columns, skip_ok, scope, fill)
        self.changed()

    def adopt_block(self, block: BlockDescriptor) -> None:
        """Append rows a compute worker stored as chunks, after every row so far (stored
        durably: the caller waits for a process worker's report of that before a
        manifest names them)."""
        self.check_writable()
        for key, data in block.chunks.items():  # memory targets: the worker sent the bytes
            self.storage.put(key, data)
        parts = [
            (self.engine(name), TensorMeta.from_dict(part.meta), ChunkTable.from_dict(part.table))
            for name, part in block.tensors.items()
        ]
        for (engine, meta, table), part in zip(parts, block.tensors.values()):
            if not remap_class_labels(engine, meta, table, part.base_class_names):
                engine.adopt(table, meta)
        self.changed()

    def update_rows(self, name: str, rows: Sequence[int], values: Sequence[Any]) -> None:
        self.check_writable()
        self.engine(name)
        for changed in update_column(self.engines, name, rows, values):  # companions too
            self.changes.rows_updated(changed, rows)
        self.changed()

    def flush(self) -> None:
        """Store every written row and the staging manifest that names them."""
        if not self.state.dirty or self.read_only:
            return
        for engine in self.engines.values():
            engine.flush_chunks()
        self.writer.wait()
        stored = self.store.save(self.manifest())
        records.write_staging(self.storage, self.branch, self.commit_id, stored, self.changes)
        old = self.state.staging_segments
        self.state = self.state.evolve(staged=True, staging_segments=segment_set(stored))
        self.delete_garbage(old)
        self.state = self.state.evolve(dirty=False)

    def delete_garbage(self, old_segments: frozenset[str]) -> None:
        """Discard superseded chunks and ``old_segments``, except what the stored state
        names (only call once no stored manifest names them), and delete the garbage
        past its grace."""
        self.discard(self.take_garbage(old_segments))
        self.collect()

    def discard(self, garbage: list[str]) -> None:
        """Objects no stored manifest names any more: deleted once past the grace
        (``garbage.py``; at once with a grace of 0). Safe from any thread."""
        if not garbage:
            return
        if config.gc_grace() > 0:
            self.bin.add(garbage)
            return
        self.storage.delete_many(garbage)
        self.store.forget(garbage)

    def collect(self, grace: float | None = None) -> list[str]:
        """Delete the discarded objects past ``grace`` (default: the configured grace)
        that the stored state does not name again; return their keys."""
        grace = config.gc_grace() if grace is None else grace
        due = self.bin.due(grace)
        if not due:
            return []
        state = self.state
        named = state.staging_segments | state.commit_segments  # a segment named again
        gone = [k for k in due if k not in named]
        if gone:
            self.storage.delete_many(gone)
            self.store.forget(gone)
        self.bin.forget(due)
        return gone

    def keep_garbage_record(self) -> None:
        """Store what the bin holds as a garbage record, so that ``gc`` in any process
        knows since when it is garbage (a writer closing, before its grace is over)."""
        if self.read_only or self.deleted or not len(self.bin):
            return
        try:
            self.collect()
            write_record(self.storage, self.bin.entries())
            self.bin.clear()
        except StorageError:  # unrecorded garbage is found by gc all the same, later
            pass

    def take_garbage(self, old_segments: frozenset[str]) -> list[str]:
        """The keys ``delete_garbage`` deletes (and forget them)."""
        garbage, self._garbage = self._garbage, []
        garbage += [k for e in self.engines.values() for k in e.take_garbage()]
        state = self.state
        named = state.staging_segments | state.commit_segments
        self.bin.forget(named)  # a segment discarded before, named again: no garbage
        garbage += sorted(old_segments - named)
        return garbage

    def manifest(self) -> Manifest:
        return Manifest(
            {n: TensorState(e.meta, e.manifest_table()) for n, e in self.engines.items()},
            self.info,
            self.groups,
            self.links.creds_keys,
            self.settings,
        )

    def delete(self) -> None:
        """Delete every object of the dataset (``delete.py``); nothing is stored after,
        and every later write raises ``DatasetError``."""
        if self.read_only:
            self.check_writable()  # raises ReadOnlyError
        try:
            self.writer.close()  # no chunk put still running lands after the deletion
        except Exception:  # a failed put does not matter: everything goes
            pass
        self.state = self.state.evolve(dirty=False)  # what was not flushed is dropped
        delete_dataset(self.storage, self.lock_mode)
        self.bin.clear()
        self.deleted = True
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def close(self) -> None:
        try:
            self.flush()
        finally:
            try:
                self.writer.close()
                self.keep_garbage_record()
            finally:  # the lock goes whatever failed before
                if self.lock is not None:
                    self.lock.release()
                    self.lock = None

    # -- reads ----------------------------------------------------------------------
    def lengths(self, names: Sequence[str] | None = None) -> list[int]:
        names = list(self.engines) if names is None else names
        return [self.engines[n].num_rows for n in names if not self.engines[n].meta.hidden]

    def link_reader(self, name: str) -> LinkReader:
        """Reads the objects behind the rows of link tensor ``name``."""
        engine = self.engine(name)
        info = engine.meta.extra.get("info_tensor")
        return LinkReader(
            engine, self.engines.get(info) if info else None, self.links, self.link_policy
        )
