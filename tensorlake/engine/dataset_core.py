"""The state behind a ``Dataset`` and all its views: tensors, writes, flushes.

Every view of a dataset shares one ``DatasetCore``. Writes to several tensors are
validated on all of them before any is changed, which is what makes ``ds.append(row)``
all-or-nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tensorlake import config
from tensorlake.engine import sample_codec, version_state
from tensorlake.engine.block import BlockDescriptor, remap_class_labels
from tensorlake.engine.changes import DATASET_INFO, Changes
from tensorlake.engine.htypes import (
    LINK_ARGS,
    UNSET,
    check_info_args,
    get_htype,
    is_link,
    resolve_compression,
)
from tensorlake.engine.io import ChunkCache, ChunkWriter
from tensorlake.engine.links import LinkResolver
from tensorlake.engine.lock import WriterLock
from tensorlake.engine.manifest import ChunkTable, Manifest, TensorMeta, TensorState
from tensorlake.engine.tensor_engine import TensorEngine, append_columns
from tensorlake.errors import (
    DatasetError,
    ReadOnlyError,
    SampleError,
    TensorNotFoundError,
)
from tensorlake.storage import Storage

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def check_name(name: str) -> None:
    parts = name.split("/")
    if not name or not all(_NAME.match(p) for p in parts):
        raise ValueError(
            f"Invalid tensor or group name {name!r}: use letters, digits, '_', '-', '.', "
            "with '/' separating groups (e.g. 'images' or 'labels/boxes')."
        )


class DatasetCore:
    """Tensors of the checked-out version, their engines, and the write protocol.

    A core is at a branch (writable: its head commit plus staged changes) or, detached,
    at a past commit (read-only). Version operations (commit, checkout, reset ...) live
    in ``versioning.py`` and rebuild the state through ``install``.
    """

    def __init__(
        self,
        storage: Storage,
        url: str,
        read_only: bool,
        branch: str = version_state.DEFAULT_BRANCH,
        commit_id: str | None = None,
        creds: dict | None = None,
    ) -> None:
        self.storage = storage
        self.url = url
        self.creds = creds  # to open the same storage elsewhere (compute workers)
        self.read_only = read_only
        self.writer = ChunkWriter(storage)
        self.cache = ChunkCache()
        self.store = version_state.ManifestStore(storage)
        self.lock: WriterLock | None = None  # taken on the first write, kept until close()
        self.links = LinkResolver([])  # creds populated in this session survive checkouts
        self.batch_depth = 0
        if commit_id is None:
            self.open_branch(branch)
        else:
            self.open_commit(commit_id)

    def open_branch(self, branch: str) -> None:
        head = version_state.read_head(self.storage, branch)
        committed = version_state.read_commit(self.storage, head).manifest
        staged = version_state.current_staging(self.storage, branch, head)
        current = staged.manifest if staged is not None else committed
        changes = staged.changes if staged is not None else Changes()
        self.install(branch, head, self.store.load(current), changes)
        self.head_changes = self.staged = staged is not None
        self.commit_segments = segment_set(committed)
        self.staging_segments = segment_set(staged.manifest) if staged is not None else set()

    def open_commit(self, commit_id: str) -> None:
        stored = version_state.read_commit(self.storage, commit_id)
        assert stored.commit is not None
        manifest = self.store.load(stored.manifest)
        self.install(stored.commit.branch, commit_id, manifest, Changes(), detached=True)
        self.commit_segments = segment_set(stored.manifest)

    def install(
        self,
        branch: str,
        commit_id: str,
        manifest: Manifest,
        changes: Changes,
        detached: bool = False,
    ) -> None:
        """Make ``manifest`` the checked-out state (discarding any unflushed state)."""
        self.branch = branch
        self.commit_id = commit_id
        self.detached = detached
        self.changes = changes
        self.info: dict[str, Any] = manifest.info
        self.groups: list[str] = manifest.groups
        self.links.creds_keys = manifest.creds_keys
        self.settings = manifest.settings
        self.engines: dict[str, TensorEngine] = {
            name: self._new_engine(s.meta, s.table) for name, s in manifest.tensors.items()
        }
        self.dirty = False
        self.head_changes = False  # anything since the head commit, flushed or not
        self._garbage: list[str] = []  # chunks of deleted tensors, removed after the manifest
        # table segments named by the head commit and by the stored staging manifest
        self.commit_segments: set[str] = set()
        self.staging_segments: set[str] = set()
        self.staged = False  # a staging object continues the head commit

    # -- guards ---------------------------------------------------------------------
    def check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyError(
                f"The dataset at {self.url} is open read-only. Open it with "
                "tl.load(path, read_only=False) to modify it."
            )
        if self.detached:
            raise ReadOnlyError(
                f"Commit {self.commit_id[:12]} is a past version and cannot change. "
                f"checkout('{self.branch}') to write on its branch, or "
                "checkout('<new-branch>', create=True) to start a branch from here."
            )
        self.take_lock()

    def take_lock(self) -> None:
        """Hold the dataset's writer lock (raises ``LockedError`` if another process does)."""
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

    def changed(self) -> None:
        """Record a mutation; outside ``with ds:`` it is flushed at once."""
        self.dirty = True
        self.head_changes = True
        if self.batch_depth == 0:
            self.flush()

    def info_changed(self, tensor: str = DATASET_INFO) -> None:
        self.changes.info_updated(tensor)
        self.changed()

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
        for parent in _parents(name):
            if parent in self.engines:
                raise DatasetError(f"Cannot create '{name}': '{parent}' is a tensor, not a group.")
        spec = get_htype(htype)
        link_args = {k: kwargs.pop(k) for k in LINK_ARGS if k in kwargs and is_link(spec.name)}
        info = check_info_args(spec, kwargs)
        compression = resolve_compression(spec, sample_compression)
        chunk_comp = resolve_compression(get_htype("generic"), chunk_compression)
        if (
            spec.dtype is not None
            and dtype is not None
            and not spec.scalar
            and np.dtype(dtype) != np.dtype(spec.dtype)
        ):
            raise ValueError(f"htype '{htype}' stores {spec.dtype}; dtype={dtype!r} conflicts.")
        resolved_dtype = spec.dtype if spec.dtype is not None else _dtype_name(dtype)
        meta = TensorMeta(
            name=name,
            htype=spec.name,
            dtype=resolved_dtype,
            sample_compression=compression,
            chunk_compression=chunk_comp,
            max_chunk_size=int(max_chunk_size or config.chunk_size()),
            hidden=hidden,
            info=info,
        )
        if is_link(spec.name):
            meta.extra = self._link_companions(name, link_args)
        engine = self._new_engine(meta)
        self.engines[name] = engine
        for parent in _parents(name):
            if parent not in self.groups:
                self.groups.append(parent)
        self.changed()
        return engine

    def _link_companions(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """Create the hidden shape and sample-info tensors of a link tensor (Deep Lake's
        ``create_shape_tensor`` / ``create_sample_info_tensor``); returns its ``extra``."""
        head, _, leaf = name.rpartition("/")
        prefix = f"{head}/_{leaf}" if head else f"_{name}"
        extra: dict[str, Any] = {"verify": bool(args.get("verify", True))}
        for arg, suffix, kind in (
            ("create_shape_tensor", "_shape", {"dtype": "uint32"}),
            ("create_sample_info_tensor", "_info", {"htype": "json"}),
        ):
            if args.get(arg, True):
                hidden = prefix + suffix
                self.engines[hidden] = self._new_engine(
                    TensorMeta(
                        name=hidden,
                        htype=kind.get("htype", "generic"),
                        dtype=kind.get("dtype", "json"),
                        max_chunk_size=config.chunk_size(),
                        hidden=True,
                    )
                )
                extra["shape_tensor" if suffix == "_shape" else "info_tensor"] = hidden
        return extra

    def _new_engine(self, meta: TensorMeta, table: ChunkTable | None = None) -> TensorEngine:
        engine = TensorEngine(
            self.storage,
            meta,
            table if table is not None else ChunkTable(),
            self.writer,
            self.cache,
        )
        engine.links = self.links
        return engine

    def create_group(self, name: str) -> None:
        self.check_writable()
        check_name(name)
        if name in self.engines:
            raise DatasetError(f"'{name}' is a tensor; a group cannot have the same name.")
        for g in (*_parents(name), name):
            if g not in self.groups:
                self.groups.append(g)
        self.changed()

    def delete_tensor(self, name: str) -> None:
        self.check_writable()
        engine = self.engine(name)
        companions = [engine.meta.extra.get(k) for k in ("shape_tensor", "info_tensor")]
        for victim in [name, *(c for c in companions if c in self.engines)]:
            self._garbage.extend(self.engines.pop(victim).staged_chunk_keys())
            self.changes.tensor_deleted(victim)
        self.changed()

    # -- writes ---------------------------------------------------------------------
    def append_rows(
        self,
        columns: Mapping[str, Sequence[Any]],
        skip_ok: bool = False,
        scope: Sequence[str] | None = None,
    ) -> None:
        """Append the same number of rows to several tensors, all or nothing.

        Unless ``skip_ok``, every visible tensor in ``scope`` (default: all) needs values.
        """
        self.check_writable()
        for name in columns:
            self.engine(name)
        append_columns(self.engines, columns, skip_ok, scope)
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
        engine = self.engine(name)
        if len(rows) != len(values):
            raise SampleError(
                f"{len(rows)} rows selected but {len(values)} values given.", tensor=name
            )
        pending = engine.new_pending()
        encoded = [sample_codec.encode(engine.meta, v, pending, r) for r, v in zip(rows, values)]
        for row, sample in zip(rows, encoded):
            engine.update_encoded(int(row), sample, pending)
        self.changes.rows_updated(name, rows)
        self.changed()

    def flush(self) -> None:
        """Store every written row and the staging manifest that names them."""
        if not self.dirty or self.read_only:
            return
        for engine in self.engines.values():
            engine.flush_chunks()
        self.writer.wait()
        stored = self.store.save(self.manifest())
        version_state.write_staging(self.storage, self.branch, self.commit_id, stored, self.changes)
        self.staged = True
        old, self.staging_segments = self.staging_segments, segment_set(stored)
        self.delete_garbage(old)
        self.dirty = False

    def delete_garbage(self, old_segments: set[str]) -> None:
        """Delete superseded chunks and ``old_segments``, except what the stored state
        names; only call once no stored manifest names them."""
        garbage = self.take_garbage(old_segments)
        if garbage:
            self.storage.delete_many(garbage)

    def take_garbage(self, old_segments: set[str]) -> list[str]:
        """The keys ``delete_garbage`` deletes (and forget them)."""
        garbage, self._garbage = self._garbage, []
        garbage += [k for e in self.engines.values() for k in e.take_garbage()]
        garbage += sorted(old_segments - self.staging_segments - self.commit_segments)
        return garbage

    def manifest(self) -> Manifest:
        return Manifest(
            {n: TensorState(e.meta, e.manifest_table()) for n, e in self.engines.items()},
            self.info,
            self.groups,
            self.links.creds_keys,
            self.settings,
        )

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.writer.close()
            if self.lock is not None:
                self.lock.release()
                self.lock = None

    # -- lengths --------------------------------------------------------------------
    def lengths(self, names: Sequence[str] | None = None) -> list[int]:
        names = list(self.engines) if names is None else names
        return [self.engines[n].num_rows for n in names if not self.engines[n].meta.hidden]


def segment_set(stored_manifest: dict[str, Any]) -> set[str]:
    return {k for keys in Manifest.segment_keys(stored_manifest).values() for k in keys}


def _parents(name: str) -> list[str]:
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _dtype_name(dtype: Any) -> str | None:
    if dtype is None:
        return None
    return np.dtype(dtype).name
