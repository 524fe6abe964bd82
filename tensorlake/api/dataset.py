"""``Dataset``: tensors side by side; indexing gives views that share the same state."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from tensorlake.api import copying, saved_views, selection
from tensorlake.api.hooks import integration
from tensorlake.api.index import Index
from tensorlake.api.info import Info
from tensorlake.api.pickling import PickledDataset, pickled, reopen
from tensorlake.api.progress import byte_bar
from tensorlake.api.summary import summary_table
from tensorlake.api.tensor import Tensor
from tensorlake.engine.core import rename, transfer
from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.engine.core.names import check_not_attribute
from tensorlake.engine.core.rows import check_pop_rows, empty_rows, pop_rows
from tensorlake.engine.format import records
from tensorlake.engine.format.views import SavedView
from tensorlake.engine.htypes.base import UNSET
from tensorlake.engine.version import checkout as version_checkout
from tensorlake.engine.version import commit as version_commit
from tensorlake.engine.version import diff as version_diff
from tensorlake.engine.version import gc as version_gc
from tensorlake.engine.version import log as version_log
from tensorlake.engine.version import merge as version_merge
from tensorlake.engine.version import verify as version_verify
from tensorlake.engine.version.verify import VerifyReport
from tensorlake.errors import (
    DatasetArgumentError,
    DatasetError,
    LinkError,
    SampleError,
    TensorNotFoundError,
)

__all__ = ["Dataset", "core_of", "rows_of"]


class Dataset:
    """A versioned collection of tensors of equal meaning per row.

    Example::

        ds = tl.empty("s3://bucket/coco", creds=creds)
        with ds:
            ds.create_tensor("images", htype="image", sample_compression="jpeg")
            ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog"])
            ds.append({"images": tl.read("cat.jpg"), "labels": "cat"})
        ds[0].images.numpy()     # (H, W, 3) uint8
        ds[:100].labels.numpy()  # view of the first 100 rows
    """

    def __init__(
        self, core: DatasetCore, index: Index | None = None, group: str = "", pad: bool = False
    ) -> None:
        object.__setattr__(self, "_core", core)
        object.__setattr__(self, "_index", index or Index())
        object.__setattr__(self, "_group", group)
        object.__setattr__(self, "_pad", pad)  # shorter tensors padded (max_view)

    # -- naming -----------------------------------------------------------------------
    def _full(self, name: str) -> str:
        return f"{self._group}/{name}" if self._group else name

    @property
    def path(self) -> str:
        return self._core.url

    @property
    def read_only(self) -> bool:
        """Whether writes are refused. Settable, as in Deep Lake: ``ds.read_only = True``
        stores what was written and releases the writer lock (another process may write
        then); ``False`` takes the lock again (``LockedError`` while another process
        holds it) and reloads the branch as storage holds it."""
        return self._core.read_only

    @read_only.setter
    def read_only(self, value: bool) -> None:
        self._check_not_view("read_only")
        self._core.set_read_only(bool(value))

    @property
    def branch(self) -> str:
        return self._core.branch

    @property
    def commit_id(self) -> str:
        """The checked-out commit: the branch's head commit, or the past commit viewed."""
        return self._core.commit_id

    @property
    def group_index(self) -> str:
        return self._group

    @property
    def is_view(self) -> bool:
        """Whether this is a selection of rows (``ds[...]``) rather than the whole dataset."""
        return not self._index.is_full

    @property
    def sample_indices(self) -> list[int]:
        """The dataset's row numbers this view selects (every row for the dataset itself)."""
        return np.atleast_1d(self._index.absolute(self.min_len)).tolist()

    @property
    def no_view_dataset(self) -> Dataset:
        """The same dataset (or group) with every row: the view's selection dropped."""
        return Dataset(self._core, None, self._group) if self.is_view else self

    @property
    def root(self) -> Dataset:
        """The dataset a group belongs to (with the same rows selected)."""
        return Dataset(self._core, self._index, "", self._pad) if self._group else self

    @property
    def parent(self) -> Dataset | None:
        """The group above this one (``ds["a/b"].parent`` is ``ds["a"]``); None at the root."""
        if not self._group:
            return None
        return Dataset(self._core, self._index, self._group.rpartition("/")[0], self._pad)

    @property
    def is_head_node(self) -> bool:
        """Whether the checked-out version is a branch's head (writable), not a past commit."""
        return not self._core.detached

    def _tensor_names(self, include_hidden: bool = False) -> list[str]:
        prefix = f"{self._group}/" if self._group else ""
        return [
            n
            for n, e in self._core.engines.items()
            if n.startswith(prefix) and (include_hidden or not e.meta.hidden)
        ]

    @property
    def tensors(self) -> dict[str, Tensor]:
        """Every (non-hidden) tensor under this dataset or group, by relative name."""
        cut = len(self._group) + 1 if self._group else 0
        return {
            n[cut:]: Tensor(self._core, n, self._index, self._pad) for n in self._tensor_names()
        }

    @property
    def groups(self) -> dict[str, Dataset]:
        prefix = f"{self._group}/" if self._group else ""
        return {
            g[len(prefix) :]: Dataset(self._core, self._index, g)
            for g in self._core.groups
            if g.startswith(prefix) and "/" not in g[len(prefix) :]
        }

    @property
    def info(self) -> Info:
        if self._group:
            raise DatasetError("Groups have no info of their own; use the dataset's info.")
        return Info(self._core.info, self._core.info_changed, self._core.check_writable)

    # -- length -----------------------------------------------------------------------
    def _lengths(self) -> list[int]:
        return self._core.lengths(self._tensor_names())

    @property
    def min_len(self) -> int:
        """Length of the shortest tensor (``len(ds)``)."""
        lengths = self._lengths()
        return min(lengths) if lengths else 0

    @property
    def max_len(self) -> int:
        """Length of the longest tensor: rows some tensors have and others lack."""
        lengths = self._lengths()
        return max(lengths) if lengths else 0

    def __len__(self) -> int:
        return self._index.length(self.min_len)

    @property
    def num_samples(self) -> int:
        return len(self)

    # -- indexing ---------------------------------------------------------------------
    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, str):
            full = self._full(item)
            if full in self._core.engines:
                return Tensor(self._core, full, self._index, self._pad)
            if full in self._core.groups:
                return Dataset(self._core, self._index, full, self._pad)
            raise TensorNotFoundError(
                f"No tensor or group '{item}'. Tensors: {sorted(self.tensors) or 'none'}."
            )
        if isinstance(item, (list, tuple)) and item and all(isinstance(i, str) for i in item):
            raise DatasetError("Select one tensor at a time, e.g. ds['images'].")
        index = self._index.compose(item, self.min_len)
        return Dataset(self._core, index, self._group, self._pad)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except TensorNotFoundError:
            raise AttributeError(
                f"Dataset has no attribute or tensor '{name}'. Tensors: {sorted(self.tensors) or 'none'}."
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("link_policy", "read_only"):
            object.__setattr__(self, name, value)  # the property's setter
            return
        if self._full(name) in self._core.engines:
            self[name][...] = value
            return
        raise AttributeError(f"Cannot set attribute '{name}' on a dataset.")

    def __iter__(self) -> Iterator[Dataset]:
        for i in range(len(self)):
            yield self[i]

    def __reduce__(self) -> tuple[Any, tuple[PickledDataset]]:
        """Pickle by reference: a reopened dataset at the same path, version (branch or
        past commit), ``read_only``, view and group (``api/pickling.py``), for
        ``DataLoader`` workers and ``ProcessPoolExecutor`` tasks. Rows not stored yet
        are flushed first; ``mem://`` datasets raise ``NotPicklableError``."""
        return _unpickle_dataset, (pickled(self._core, self._index, self._group),)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self.tensors, *self.groups})

    # -- schema -----------------------------------------------------------------------
    def create_tensor(
        self,
        name: str,
        htype: str = "generic",
        dtype: Any = None,
        sample_compression: str | None = UNSET,
        chunk_compression: str | None = None,
        hidden: bool = False,
        max_chunk_size: int | None = None,
        exist_ok: bool = False,
        **kwargs: Any,
    ) -> Tensor:
        """Add a tensor (column). htype-specific arguments: ``class_names``, ``coords``.

        Example::

            ds.create_tensor("boxes", htype="bbox", coords={"type": "pixel", "mode": "LTWH"})
        """
        self._check_not_view("create_tensor")
        check_not_attribute(name, dir(Dataset))
        full = self._full(name)
        self._core.create_tensor(
            full,
            htype=htype,
            dtype=dtype,
            sample_compression=sample_compression,
            chunk_compression=chunk_compression,
            max_chunk_size=max_chunk_size,
            hidden=hidden,
            exist_ok=exist_ok,
            **kwargs,
        )
        return Tensor(self._core, full)

    def create_group(self, name: str, exist_ok: bool = False) -> Dataset:
        self._check_not_view("create_group")
        check_not_attribute(name, dir(Dataset))
        full = self._full(name)
        if full in self._core.groups and not exist_ok:
            raise DatasetError(f"Group '{name}' already exists. Pass exist_ok=True to reuse it.")
        self._core.create_group(full)
        return Dataset(self._core, None, full)

    def delete_tensor(self, name: str, large_ok: bool = False) -> None:
        self._check_not_view("delete_tensor")
        self._core.delete_tensor(self._full(name))

    def delete_group(self, name: str, large_ok: bool = False) -> None:
        """Delete group ``name`` with every tensor and group in it (a change the next
        commit records; earlier commits keep them). ``large_ok`` is accepted for Deep
        Lake's signature; no size limit applies."""
        self._check_not_view("delete_group")
        rename.delete_group(self._core, self._full(name))

    def rename_tensor(self, name: str, new_name: str) -> Tensor:
        """Rename tensor ``name`` to ``new_name`` in the same group; returns it.

        No chunk is copied: the tensor's chunks keep their keys, which its meta records,
        so earlier commits (where it has the old name) stay as they were.

        Example::

            ds.rename_tensor("lbl", "labels")
            ds.commit("rename lbl")      # ds.diff() shows the rename
        """
        self._check_not_view("rename_tensor")
        check_not_attribute(new_name, dir(Dataset))
        new = self._full(new_name)
        rename.rename_tensor(self._core, self._full(name), new)
        return Tensor(self._core, new)

    def rename_group(self, name: str, new_name: str) -> None:
        """Rename group ``name`` to ``new_name`` (same parent group), with all inside."""
        self._check_not_view("rename_group")
        check_not_attribute(new_name, dir(Dataset))
        rename.rename_group(self._core, self._full(name), self._full(new_name))

    def create_tensor_like(self, name: str, source: Tensor, unlink: bool = False) -> Tensor:
        """A new tensor ``name`` with the meta and info of ``source`` (of this or another
        dataset): htype, dtype, compressions, chunk size, class names ...; no rows.
        ``unlink=True`` makes a link tensor's copy a tensor of what it links to.

        Example::

            ds.create_tensor_like("val_labels", ds.labels)
        """
        self._check_not_view("create_tensor_like")
        full = self._full(name)
        src = core_of_tensor(source)
        extra = {n: e.meta for n, e in src.engines.items() if e.meta.hidden}
        self._core.add_tensors(copying.tensor_like(source.meta, extra, full, unlink))
        return Tensor(self._core, full)

    def rechunk(
        self,
        tensors: str | Sequence[str] | None = None,
        num_workers: int = 0,
        scheduler: str = "threaded",
        progressbar: bool = True,
    ) -> None:
        """Rewrite the rows of ``tensors`` (default: all) into fresh chunks of their chunk
        size: after many pops, updates or small appends. Rows are copied as stored (no
        decoding); earlier commits keep their chunks. ``num_workers``, ``scheduler`` and
        ``progressbar`` are accepted for Deep Lake's signature."""
        self._check_not_view("rechunk")
        names = copying.select(
            self._core, self._group, [tensors] if isinstance(tensors, str) else tensors
        )
        with self._core.batch():
            transfer.rechunk(self._core, names)

    # -- copies and views chosen by rule ------------------------------------------------
    def copy(
        self,
        dest: str | os.PathLike,
        tensors: Sequence[str] | None = None,
        overwrite: bool = False,
        creds: dict | None = None,
        token: str | None = None,
        num_workers: int = 0,
        scheduler: str = "threaded",
        progressbar: bool = True,
        public: bool = False,
    ) -> Dataset:
        """Copy this dataset, group or view (its rows, in view order) to a new dataset at
        ``dest``: the checked-out version, without history (``tl.deepcopy`` keeps it).
        ``tensors`` picks tensors or groups. Rows are copied as stored bytes.
        ``DatasetExistsError`` if ``dest`` holds a dataset, unless ``overwrite``.
        ``token``, ``num_workers``, ``scheduler``, ``progressbar`` and ``public`` are
        accepted for Deep Lake's signature.

        Example::

            small = ds[:1000].copy("./coco-1k", overwrite=True)
        """
        core = self._core
        core.flush()
        names = copying.select(core, self._group, tensors)
        target = copying.open_target(dest, creds, overwrite)
        with target.batch():
            copying.copy_schema(core, target, names, self._group, whole=not self._group)
            copying.copy_rows_into(core, target, names, self._group, self._view_rows())
        return Dataset(target)

    def _view_rows(self) -> np.ndarray | None:
        """Absolute rows of this view (None: the whole dataset, every row of each tensor)."""
        if self._index.is_full:
            return None
        return np.atleast_1d(self._index.absolute(self.min_len))

    def random_split(
        self, lengths: Sequence[int | float], seed: int | None = None
    ) -> tuple[Dataset, ...]:
        """Views of random, disjoint rows of the given ``lengths``: counts summing to
        ``len(ds)``, or fractions summing to 1 (``floor(f * len)`` each, the remainder
        handed out one by one from the first), as in Deep Lake. ``seed`` (an addition)
        makes the split repeatable. Each view keeps its rows in dataset order.

        Example::

            train, val = ds.random_split([0.8, 0.2])
        """
        if self.min_len != self.max_len:
            raise DatasetArgumentError(
                f"random_split() needs tensors of one length (they have {self.min_len} to "
                f"{self.max_len} rows): split ds.min_view, or pop the extra rows first."
            )
        pieces = selection.split_rows(np.arange(len(self)), lengths, seed)
        return tuple(self[p] for p in pieces)

    def filter(
        self,
        function: Any,
        num_workers: int = 0,
        scheduler: str = "threaded",
        progressbar: bool = False,
        save_result: bool = False,
        result_path: str | None = None,
        result_ds_args: dict | None = None,
    ) -> Dataset:
        """The view of the rows for which ``function(row)`` is true; ``row`` is the row
        view ``ds[i]`` (``row.labels.numpy()`` ...), as in Deep Lake. ``num_workers`` > 0
        calls it on that many threads; ``progressbar`` shows a bar. ``save_result=True``
        saves the view (``save_view(path=result_path, **result_ds_args)``).

        Example::

            cats = ds.filter(lambda s: s.labels.numpy()[0] == 0)
        """
        view = self[selection.filter_rows(self, function, num_workers, progressbar)]
        if save_result:
            view.save_view(path=result_path, **(result_ds_args or {}))
        return view

    @property
    def min_view(self) -> Dataset:
        """A view of the first ``min_len`` rows: every tensor cut to the shortest one's
        length (what ``len(ds)`` counts)."""
        return self[: self.min_len]

    @property
    def max_view(self) -> Dataset:
        """A view of ``max_len`` rows: shorter tensors read as empty rows past their end
        (an array of no elements; ``None`` for text and json), as Deep Lake pads them
        with ``None``."""
        if not self._index.is_full:
            return Dataset(self._core, self._index, self._group, True)
        return Dataset(self._core, Index(range(self.max_len)), self._group, True)

    # -- saved views --------------------------------------------------------------------
    def save_view(
        self,
        message: str | None = None,
        path: str | os.PathLike | None = None,
        id: str | None = None,
        optimize: bool = False,
        tensors: Sequence[str] | None = None,
        num_workers: int = 0,
        scheduler: str = "threaded",
        verbose: bool = True,
        ignore_errors: bool = False,
        overwrite: bool = False,
        **ds_args: Any,
    ) -> str:
        """Save this view (its rows and the commit they belong to) in the dataset's
        storage, under ``id`` (default: a new one); returns the id. ``optimize=True``
        also copies its rows into a dataset of their own (fast to stream).
        ``load_view(id)`` gives the same rows back, whatever was written since; the
        branch must have no uncommitted changes (commit first). ``path=`` saves the view
        as a separate dataset there instead (``tl.load(path)``; ``ds_args`` may hold its
        ``creds``) and returns the path. ``tensors`` limits what an optimized copy holds.

        Example::

            view_id = ds.filter(lambda s: s.labels.numpy()[0] == 1).save_view(message="dogs")
            dogs = ds.load_view(view_id)
        """
        if path is not None:  # an external view: a dataset of its own (Deep Lake's too)
            self.copy(path, tensors=tensors, overwrite=overwrite, creds=ds_args.get("creds"))
            return os.fspath(path)
        rows = np.atleast_1d(self._index.absolute(self.min_len))
        view = saved_views.new_view(self._core, rows, self._group, message, id, tensors)
        if not overwrite:
            saved_views.store(self._core, view, overwrite=False)  # the id is taken first
        if optimize:
            view = self._optimized(view)
        if optimize or overwrite:
            saved_views.store(self._core, view, overwrite=True)
        return view.id

    def get_views(self, commit_id: str | None = None) -> list[saved_views.ViewEntry]:
        """The saved views (oldest first), or those taken at ``commit_id``."""
        return saved_views.entries(self._core, commit_id, self._load_view, self.delete_view)

    def get_view(self, id: str) -> saved_views.ViewEntry:
        """The saved view ``id`` (``ViewNotFoundError``, a ``KeyError``, if none)."""
        return saved_views.entry(self._core, id, self._load_view, self.delete_view)

    def load_view(
        self,
        id: str,
        optimize: bool = False,
        tensors: Sequence[str] | None = None,
        num_workers: int = 0,
        scheduler: str = "threaded",
        progressbar: bool = True,
    ) -> Dataset:
        """The saved view ``id``: its rows at the commit it was saved at (read-only
        unless that is the checked-out state), or its optimized copy. ``optimize=True``
        makes that copy first. ``ViewNotFoundError`` (a ``KeyError``) for an unknown id."""
        return self._load_view(id, optimize)

    def _load_view(self, view_id: str, optimize: bool) -> Dataset:
        view = saved_views.find(self._core, view_id)
        if optimize and not view.optimized:
            view = self._optimized(view)
            saved_views.store(self._core, view, overwrite=True)
        if view.optimized:
            return Dataset(saved_views.open_optimized(self._core, view.id))
        return Dataset(self._core_at(view.commit), Index(view.rows), view.group)

    def delete_view(self, id: str) -> None:
        """Delete the saved view ``id`` (and its optimized copy)."""
        saved_views.remove(self._core, id)

    def _optimized(self, view: SavedView) -> SavedView:
        """Copy ``view``'s rows into its own dataset under ``views/<id>/``."""
        source = Dataset(self._core_at(view.commit), Index(view.rows), view.group)
        source.copy(
            saved_views.data_url(self._core, view.id),
            tensors=list(view.tensors) if view.tensors else None,
            overwrite=True,
            creds=self._core.creds,
        )
        return dataclasses.replace(view, optimized=True)

    def _core_at(self, commit_id: str) -> DatasetCore:
        """This core when it is exactly at ``commit_id``, else that commit, read-only."""
        core = self._core
        if core.commit_id == commit_id and (core.detached or not core.state.has_head_changes):
            return core
        past = DatasetCore(core.storage, core.url, True, commit_id=commit_id, creds=core.creds)
        for key, creds in core.links.creds.items():
            past.links.set_creds(key, creds)
        return past

    # -- writes -----------------------------------------------------------------------
    def append(
        self, sample: Mapping[str, Any], skip_ok: bool = False, append_empty: bool = False
    ) -> None:
        """Append one row; if any value is invalid, no tensor changes.

        Every tensor needs a value (``MissingTensorsError``, a ``KeyError``, names those
        left out) unless ``skip_ok=True``, which leaves them shorter, or
        ``append_empty=True``, which gives them an empty row (an array of no elements,
        ``""`` for text, ``None`` for json). The tensors appended to must have the same
        length (with ``append_empty``: every tensor).

        Example::

            ds.append({"images": tl.read("a.jpg"), "labels": 1})
            ds.append({"labels": 2}, append_empty=True)   # ds.images[-1]: shape (0, 0, 0)
        """
        self._check_not_view("append")
        if not isinstance(sample, Mapping):
            raise SampleError(
                "append() takes a dict of tensor name -> value, e.g. ds.append({'labels': 1}); "
                "to append to one tensor, use ds.<tensor>.append(value)."
            )
        self.extend({k: [v] for k, v in sample.items()}, skip_ok, append_empty)

    def extend(
        self,
        samples: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
        skip_ok: bool = False,
        append_empty: bool = False,
        ignore_errors: bool = False,
        progressbar: bool = False,
    ) -> None:
        """Append many rows: a dict of equal-length lists, or a list of row dicts.

        ``skip_ok`` and ``append_empty`` as for ``append``; with ``append_empty``,
        shorter lists are also padded with empty rows to the longest. ``ignore_errors``
        skips rows that do not fit their tensors (the rest are appended, one at a time).
        ``progressbar`` is accepted for Deep Lake's signature.
        """
        self._check_not_view("extend")
        if not isinstance(samples, Mapping):
            rows = list(samples)
            keys = list(rows[0]) if rows else []
            if any(set(r) != set(keys) for r in rows):
                raise SampleError("every row dict must have the same keys.")
            samples = {k: [r[k] for r in rows] for k in keys}
        columns = {}
        for name, values in samples.items():
            if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
                raise SampleError(
                    f"extend() needs a sequence of samples for '{name}'; use append() for one row."
                )
            columns[self._full(name)] = values
        counts = {name: len(v) for name, v in samples.items()}
        if len(set(counts.values())) > 1 and not append_empty:
            raise SampleError(
                f"every tensor needs the same number of samples, got {counts}. Pass "
                "append_empty=True to pad the shorter ones with empty rows."
            )
        scope = self._tensor_names()
        self._check_aligned(scope if append_empty else list(columns))
        fill = empty_rows if append_empty else None
        try:
            self._core.append_rows(columns, skip_ok=skip_ok, scope=scope, fill=fill)
        except SampleError as err:
            if not ignore_errors or err.index is None:  # not one row's fault
                raise
            with self._core.batch():
                for i in range(max(map(len, columns.values()))):
                    row = {k: [v[i]] for k, v in columns.items() if i < len(v)}
                    try:
                        self._core.append_rows(row, skip_ok=skip_ok, scope=scope, fill=fill)
                    except SampleError:
                        continue

    def _check_aligned(self, names: Sequence[str]) -> None:
        """Deep Lake's rule: the tensors a multi-tensor append writes are of one length."""
        lengths = {n: self._core.engine(n).num_rows for n in names}
        visible = {n: k for n, k in lengths.items() if not self._core.engine(n).meta.hidden}
        if len(set(visible.values())) > 1:
            cut = len(self._group) + 1 if self._group else 0
            shown = ", ".join(f"'{n[cut:]}' ({k} rows)" for n, k in visible.items())
            raise DatasetArgumentError(
                f"The tensors appended to have different lengths: {shown}; a row appended "
                "to all of them would not line up. Append to each tensor on its own "
                "(ds.<tensor>.extend), or pop() the longer ones to the same length first."
            )

    def pop(self, index: int | list[int] | None = None) -> None:
        """Remove row ``index`` (default: the last, ``max_len - 1``; a list: several) from
        every tensor that has it; later rows move up. A change like any other: the next
        commit records it, earlier commits keep the row.

        Raises ``InvalidIndexError`` (an ``IndexError``) for a row no tensor has or a
        negative one, ``DatasetArgumentError`` (a ``ValueError``) for duplicates.
        """
        self._check_not_view("pop")
        names = self._tensor_names()
        rows = check_pop_rows(index, self.max_len, "the dataset")
        with self._core.batch():
            pop_rows(self._core, {n: rows for n in names})

    def update(self, sample: Mapping[str, Any]) -> None:
        """Replace the values of this row view (``ds[i].update({...})``)."""
        if not self._index.is_scalar:
            raise DatasetError("update() works on one row: ds[i].update({...}).")
        for name, value in sample.items():
            self[name][...] = value

    def flush(self) -> None:
        """Store everything written so far (``with ds:`` does this once at the end)."""
        self._core.flush()

    def clear_cache(self) -> None:
        """Flush (when writable), then drop the chunks cached in memory, so that the next
        reads fetch from storage (Deep Lake's ``clear_cache``)."""
        if not self.read_only:
            self._core.flush()
        self._core.cache.clear()

    def close(self) -> None:
        """Flush, and release the writer lock so another process can write.

        Optional: the lock is also released when the process exits, and a lock left by
        a process that died is taken over automatically.
        """
        self._core.close()

    def __enter__(self) -> Dataset:
        self._core.begin_batch()
        return self

    def __exit__(self, *exc: object) -> None:
        self._core.end_batch()

    def _check_not_view(self, op: str) -> None:
        if not self._index.is_full:
            raise DatasetError(f"{op}() is not allowed on a view; call it on the dataset.")

    # -- linked data ------------------------------------------------------------------
    def add_creds_key(self, creds_key: str, managed: bool = False) -> None:
        """Declare the name of credentials that links may use (``tl.link(url, creds_key=)``).

        Only the name is stored with the dataset, never a secret. A plain key needs its
        secrets in each session (``populate_creds``). A managed key (``managed=True``) is
        resolved by every process that opens its links, compute workers included, from
        the standard AWS sources, in this order:

        1. ``TENSORLAKE_CREDS_<KEY>_AWS_ACCESS_KEY_ID``, ``..._AWS_SECRET_ACCESS_KEY``,
           ``..._AWS_SESSION_TOKEN``, ``..._ENDPOINT_URL``, ``..._AWS_REGION``, when any is
           set (``<KEY>``: the key upper-cased, every character but A-Z and 0-9 as ``_``);
        2. the AWS profile named ``creds_key`` in the AWS config or credentials file;
        3. else reading (or appending with ``verify``) raises ``DatasetError``.

        ``populate_creds`` still overrides a managed key for the session. Adding a known
        key again changes nothing, except that ``managed=True`` makes a plain key managed;
        ``change_creds_management`` switches either way.

        Example::

            ds.add_creds_key("raw", managed=True)
            ds.images.append(tl.link("s3://raw-bucket/img/1.jpg", creds_key="raw"))
            # on each machine: an AWS profile "raw", or TENSORLAKE_CREDS_RAW_AWS_ACCESS_KEY_ID
            # and TENSORLAKE_CREDS_RAW_AWS_SECRET_ACCESS_KEY in the environment
        """
        if not isinstance(creds_key, str) or not creds_key:
            raise LinkError(f"creds_key must be a non-empty string, got {creds_key!r}.")
        self._core.add_creds_key(creds_key, True if managed else None)

    def change_creds_management(self, creds_key: str, managed: bool) -> None:
        """Make a known creds key managed (``True``) or plain (``False``); see
        ``add_creds_key``. A plain key needs ``populate_creds`` in each session again."""
        self._known_creds_key(creds_key)
        self._core.add_creds_key(creds_key, bool(managed))

    def populate_creds(self, creds_key: str, creds: dict[str, Any] | None) -> None:
        """Give this session the credentials behind ``creds_key`` (S3 keys, endpoint,
        region, as for ``tl.load``). They are kept in memory only, never stored; for a
        managed key they take the place of what this process would resolve (and travel
        to compute workers, like any populated creds)."""
        self._known_creds_key(creds_key)
        self._core.links.set_creds(creds_key, creds)

    def get_creds_keys(self) -> list[str]:
        """The creds keys links of this dataset may name, managed or not."""
        return list(self._core.links.creds_keys)

    def get_managed_creds_keys(self) -> list[str]:
        """The managed creds keys (sorted): those each process resolves itself."""
        return sorted(self._core.links.managed)

    def _known_creds_key(self, creds_key: str) -> None:
        if creds_key not in self._core.links.creds_keys:
            raise DatasetError(
                f"Unknown creds key '{creds_key}'. Add it first with "
                f"ds.add_creds_key('{creds_key}') (or managed=True). "
                f"Known keys: {self._core.links.creds_keys}."
            )

    @property
    def link_policy(self) -> str:
        """What reading a linked object that changed since ingest does: ``"warn"``
        (default), ``"error"`` or ``"ignore"``. Stored with the dataset version."""
        return self._core.link_policy

    @link_policy.setter
    def link_policy(self, policy: str) -> None:
        self._core.set_link_policy(policy)

    # -- versions ---------------------------------------------------------------------
    def commit(self, message: str | None = None, allow_empty: bool = False) -> str:
        """Record the current state of the branch as a commit; returns its id.

        Copies no data: the commit shares every unchanged chunk with its parent.
        Raises ``VersionError`` when nothing changed, unless ``allow_empty=True``.
        """
        self._check_not_view("commit")
        return version_commit.commit(self._core, message, allow_empty)

    @property
    def commits(self) -> list[dict[str, Any]]:
        """Commits from the current one back to the first, newest first: dicts with
        ``commit``, ``author``, ``time``, ``message``, ``branch`` and extra fields
        such as ``samples_processed`` (checkpoints of ``compute``)."""
        return version_log.commits(self._core)

    def log(self) -> None:
        """Print the commit history of the checked-out version."""
        print(version_log.format_log(self._core))

    @property
    def branches(self) -> list[str]:
        return records.list_branches(self._core.storage)

    @property
    def has_head_changes(self) -> bool:
        """Whether the branch has changes since its head commit (committed or not)."""
        return self._core.state.has_head_changes

    def checkout(self, address: str, create: bool = False) -> str:
        """Switch to a branch or a commit id (a past commit is read-only), or with
        ``create=True`` start branch ``address`` here. Returns the commit id.

        Example::

            ds.checkout("relabel", create=True)   # uncommitted changes are committed first
            ds.checkout("main")
            ds.checkout(first_commit_id)          # read-only view of the past
        """
        self._check_not_view("checkout")
        return version_checkout.checkout(self._core, address, create)

    def merge(
        self,
        target_id: str,
        conflict_resolution: str | None = None,
        delete_removed_tensors: bool = False,
        force: bool = False,
    ) -> None:
        """Merge ``target_id`` (a branch or commit) into the checked-out branch, as Deep
        Lake does: tensors it created are added, rows it appended are appended, rows it
        updated are updated, and the result is committed. A row both sides updated is a
        conflict: ``conflict_resolution="ours"`` keeps this branch's value, ``"theirs"``
        takes the target's, None raises ``MergeConflictError`` (``.conflicts``: tensor ->
        rows) before anything changes. ``delete_removed_tensors`` also deletes the
        tensors the target deleted; ``force`` adds tensors the target renamed as new ones.
        Rows are matched by number, so sides that popped rows cannot be merged.

        Example::

            ds.checkout("main")
            ds.merge("relabel", conflict_resolution="theirs")
        """
        self._check_not_view("merge")
        version_merge.merge(
            self._core, target_id, conflict_resolution, delete_removed_tensors, force
        )

    def delete_branch(self, name: str) -> None:
        """Delete a branch (not the checked-out one, not main) and whatever only it used."""
        version_checkout.delete_branch(self._core, name)

    def diff(
        self, id_1: str | None = None, id_2: str | None = None, as_dict: bool = False
    ) -> dict[str, Any] | None:
        """Show what changed between two versions (branch names or commit ids), each side
        since their common ancestor: tensors created or deleted, rows added and updated.

        ``diff()`` compares the current state with its head commit (the uncommitted
        changes); ``diff(a)`` the current state with ``a``; ``diff(a, b)`` ``a`` with ``b``.
        Prints unless ``as_dict=True``, which returns the changes instead.
        """
        result = version_diff.diff(self._core, id_1, id_2)
        if as_dict:
            return result
        print(version_diff.format_diff(result))
        return None

    def reset(self) -> None:
        """Drop all changes since the head commit, flushed or not, and delete the chunks
        they (or a crashed writer) left behind. After a crash this restores the last
        commit (the last checkpoint of ``compute``) exactly."""
        self._check_not_view("reset")
        version_checkout.reset(self._core)

    def gc(self, grace: float | None = None) -> dict[str, int]:
        """Delete stored objects no version refers to (left by crashes, resets and
        deleted branches) once they have been garbage for ``grace`` seconds (default
        ``TENSORLAKE_GC_GRACE``, 300: readers of an older manifest may still read them;
        0 deletes all at once), and the temp files of writes killed midway (a local
        dataset); returns how many objects of each kind were removed."""
        return version_gc.gc(self._core, grace)

    # -- the stored objects -------------------------------------------------------------
    def verify(self, links: bool = False, progressbar: bool = False) -> VerifyReport:
        """Check that every stored object a version of this dataset needs is there and
        intact: for every branch (its head and staged state) and every commit before
        them, the commit and staging objects, the chunk-table segments they name, and
        each chunk those name (its size and every checksum). ``links=True`` also checks
        that the object behind every ``link[...]`` row exists (with this session's
        creds). Reads only (rows not flushed yet are flushed first); ``progressbar``
        shows the bytes read on stderr.

        Returns a ``VerifyReport``: ``ok``, the counts of what was read, and
        ``problems``, each naming a storage key (or a link's URL) and what is wrong.
        Run it while nobody writes the dataset: a writer replaces objects as it goes.

        Example::

            report = ds.verify(links=True)
            print(report)
            report.raise_if_damaged()  # FormatError naming the first damaged object
        """
        core = self._core
        core.flush()
        with byte_bar(progressbar, "verify") as progress:
            return version_verify.verify(core.storage, core.links if links else None, progress)

    def delete(self, large_ok: bool = False) -> None:
        """Delete the dataset: every object under its path, every version and branch.

        Needs a writable dataset, and the writer lock (``LockedError`` when another
        process writes it). Rows not flushed are dropped; the dataset can change no
        more after. ``large_ok`` is accepted for Deep Lake's signature; no size limit
        applies. ``tl.delete(path)`` does the same without opening the dataset.

        Example::

            ds = tl.load("./scratch")
            ds.delete()
            assert not tl.exists("./scratch")
        """
        self._check_not_view("delete")
        self._core.delete()

    # -- training -----------------------------------------------------------------------
    def pytorch(
        self,
        transform: Any = None,
        tensors: Sequence[str] | None = None,
        num_workers: int = 1,
        batch_size: int = 1,
        drop_last: bool = False,
        collate_fn: Any = None,
        pin_memory: bool = False,
        shuffle: bool = False,
        buffer_size: int = 2048,
        return_index: bool = True,
        pad_tensors: bool = False,
        transform_kwargs: dict[str, Any] | None = None,
        decode_method: dict[str, str] | None = None,
        persistent_workers: bool = False,
        seed: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """A PyTorch loader over this dataset or view, with Deep Lake 3's arguments.

        ``transform`` is a callable on each sample dict, or a dict of per-tensor
        callables; ``tensors`` a subset (default: every non-hidden tensor);
        ``decode_method`` a per-tensor ``"numpy"`` (default), ``"tobytes"``, ``"pil"`` or
        ``"data"``; ``return_index`` adds each row's index as ``"index"``;
        ``buffer_size`` is the shuffle window in MB of rows; ``pad_tensors`` reads
        ``max_len`` rows, shorter tensors giving empty rows.

        Beyond Deep Lake: every row of the view exactly once per epoch across workers
        and ranks (``rank``/``world_size`` default to ``torch.distributed``'s); the
        order depends only on ``(seed, epoch)``, never on ``num_workers``;
        ``loader.set_epoch(e)`` reshuffles; ``loader.state_dict()`` /
        ``load_state_dict()`` resume mid-epoch. ``prefetch_factor``,
        ``multiprocessing_context``, ``timeout`` and ``worker_init_fn`` go to the
        ``DataLoader``. Needs ``pip install 'tensorlake[torch]'``.

        Example::

            loader = ds.pytorch(batch_size=32, shuffle=True, seed=0, num_workers=2,
                                transform={"images": to_tensor})
            for epoch in range(10):
                loader.set_epoch(epoch)
                for batch in loader:
                    train_step(batch["images"], batch["labels"])
        """
        module = integration("pytorch", extra="torch")
        return module.TorchLoader(
            self,
            transform=transform,
            tensors=tensors,
            num_workers=num_workers,
            batch_size=batch_size,
            drop_last=drop_last,
            collate_fn=collate_fn,
            pin_memory=pin_memory,
            shuffle=shuffle,
            buffer_size=buffer_size,
            return_index=return_index,
            pad_tensors=pad_tensors,
            transform_kwargs=transform_kwargs,
            decode_method=decode_method,
            persistent_workers=persistent_workers,
            seed=seed,
            rank=rank,
            world_size=world_size,
            **_loader_kwargs(kwargs),
        )

    def batches(
        self,
        batch_size: int = 1,
        tensors: Sequence[str] | None = None,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
        buffer_size: int = 2048,
        rank: int = 0,
        world_size: int = 1,
        return_index: bool = True,
        pad_tensors: bool = False,
        decode_method: dict[str, str] | None = None,
    ) -> Any:
        """Batches as dicts of numpy arrays, for any framework (no torch needed), with
        the same exactness, determinism and ``state_dict`` resume as ``pytorch()``.

        A tensor's rows come as one array when they share a shape, else as a list.

        Example::

            for batch in ds.batches(64, shuffle=True, seed=0):
                step(batch["images"], batch["labels"])
        """
        module = integration("batches")
        return module.Batches(
            self,
            batch_size=batch_size,
            tensors=tensors,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
            buffer_size=buffer_size,
            rank=rank,
            world_size=world_size,
            return_index=return_index,
            pad_tensors=pad_tensors,
            decode_method=decode_method,
        )

    def to_ray(
        self,
        tensors: Sequence[str] | str | None = None,
        decode_method: dict[str, str] | None = None,
    ) -> Any:
        """The rows as a ``ray.data.Dataset`` (a column per tensor, and ``index``: each
        row's index in the dataset), read in parallel by Ray's workers, one task per
        stored chunk. The dataset must be stored where the workers reach it (local disk
        or S3) and flushed.

        Example::

            images = ds.to_ray(["images"]).map_batches(embed, batch_size=64)
        """
        return integration("ray_dataset", extra="ray").to_ray(self, tensors, decode_method)

    def to_dask(
        self,
        tensors: Sequence[str] | str | None = None,
        as_bag: bool = False,
        decode_method: dict[str, str] | None = None,
    ) -> Any:
        """``{tensor: dask.array.Array}``, each chunked along the tensor's stored chunks
        (tensors of fixed-shape rows), or with ``as_bag`` a ``dask.bag.Bag`` of row dicts.
        The dataset must be stored where the workers reach it (local disk or S3).

        Example::

            mean = ds.to_dask(["embeddings"])["embeddings"].mean(axis=0).compute()
        """
        return integration("dask_dataset", extra="dask").to_dask(
            self, tensors, as_bag, decode_method
        )

    # -- display ----------------------------------------------------------------------
    def summary(self) -> None:
        """Print a table of tensors: htype, shape, dtype, compression."""
        print(summary_table(self))

    def __repr__(self) -> str:
        where = "" if self._index.is_full else f", index={self._index.rows!r}"
        group = f", group={self._group!r}" if self._group else ""
        mode = ", read_only=True" if self.read_only else ""
        version = f"branch={self.branch!r}, commit={self.commit_id[:12]!r}"
        return (
            f"Dataset(path={self.path!r}{mode}, {version}{group}{where}, rows={len(self)}, "
            f"tensors={list(self.tensors)})"
        )

    def _repr_html_(self) -> str:
        """The notebook view: version, rows, a table of tensors (from the manifest only)
        and a preview of the first rows (``TENSORLAKE_HTML_PREVIEW`` rows, 0: none)."""
        return integration("notebook.html").dataset_html(self)

    def visualize(
        self,
        tensors: str | list[str] | None = None,
        cols: int = 4,
        size: int = 256,
        boxes: Any = None,
        masks: Any = None,
        labels: Any = None,
        keypoints: Any = None,
        limit: int = 64,
    ) -> Any:
        """A grid of this view's images (the first ``limit`` rows) with their boxes (in
        the tensor's coords), masks, keypoints and class names drawn, and each row's
        index under it; local and offline (Deep Lake's name, without its web app).

        ``tensors`` names the image tensor (default: the first image tensor); ``boxes``,
        ``masks``, ``labels``, ``keypoints`` name the tensors to draw (default: the first
        of each htype; ``False``: none). The result renders in a notebook, and
        ``.save("grid.png")`` / ``.image`` (a PIL image) work anywhere.

        Example::

            ds[0:16].visualize(cols=4, size=256).save("grid.png")
        """
        module = integration("notebook.grid")
        return module.visualize(self, tensors, cols, size, boxes, masks, labels, keypoints, limit)

    def numpy(self, aslist: bool = False) -> dict[str, Any]:
        """Every tensor of this view, as ``{name: tensor.numpy(...)}``."""
        return {name: t.numpy(aslist=aslist) for name, t in self.tensors.items()}


_LOADER_KWARGS = ("prefetch_factor", "multiprocessing_context", "timeout", "worker_init_fn")
# Deep Lake 3 arguments that change nothing here (its local cache, its progress bar)
_IGNORED_KWARGS = ("use_local_cache", "progressbar", "use_progress_bar", "cache_size")


def _loader_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(kwargs) - set(_LOADER_KWARGS) - set(_IGNORED_KWARGS))
    if unknown:
        raise TypeError(
            f"pytorch() got unexpected arguments {unknown}; it also takes "
            f"{list(_LOADER_KWARGS)} (passed to the DataLoader)."
        )
    return {k: v for k, v in kwargs.items() if k in _LOADER_KWARGS}


def _unpickle_dataset(state: PickledDataset) -> Dataset:
    core, index = reopen(state)
    return Dataset(core, index, state.group)


def core_of_tensor(tensor: Tensor) -> DatasetCore:
    """The core behind a tensor (for ``create_tensor_like`` from another dataset)."""
    return tensor._core


def core_of(ds: Dataset) -> DatasetCore:
    """The engine state behind ``ds`` (for the layers above this one: compute,
    integrations); every view and group of a dataset shares it."""
    return ds._core


def rows_of(ds: Dataset) -> np.ndarray | None:
    """The rows of the underlying tensors ``ds`` selects, in its order (int64); None for
    a one-row view (``ds[i]``), which is a sample rather than a selection."""
    if ds._index.is_scalar:
        return None
    return np.asarray(ds._index.absolute(ds.min_len), dtype=np.int64)
