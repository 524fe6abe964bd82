"""Verifying a dataset: every object its versions need is there and intact.

For every branch head, every branch's current staging state and every commit reachable
from them (each object checked once, however many versions name it):

- the commit and staging objects decode, and each commit names itself;
- every chunk-table segment they name (for a large table: its index segments, then the
  leaves those list) exists, matches its name (the blake2b hash of its bytes,
  ``keys.segment_key``) and decodes, each tensor's table agrees with its meta (row count,
  row order) and with its index (where each leaf ends);
- every chunk a table names exists, has the size the table records, and passes its
  checksums: prefix and header CRC, then the payload's CRC where the chunk has one, else
  every row's (``Chunk.verified_payload``, the reader's own checks); its row count and
  header size are the table's;
- with a ``LinkResolver``, that the object behind every ``link[...]`` row exists.

Objects are read concurrently (``config.io_threads()`` at a time) and never written.
Problems are collected, not raised, so one run shows the whole extent of the damage;
``VerifyReport.raise_if_damaged`` turns them into a ``FormatError``. The result is only
exact while nobody writes the dataset (a writer's flush replaces staging objects and
deletes the chunks they superseded).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from tensorlake import config
from tensorlake.engine.format import keys, records, root
from tensorlake.engine.format.chunk import Chunk
from tensorlake.engine.format.chunk_table import KIND_ROWS, ChunkTable
from tensorlake.engine.format.manifest import Manifest, TensorMeta
from tensorlake.engine.format.table_index import Leaves, unpack_index
from tensorlake.engine.links.resolver import LinkResolver
from tensorlake.engine.links.sample import LinkedSample
from tensorlake.engine.version.verify_report import Problem, VerifyReport
from tensorlake.errors import FormatError, KeyNotFoundError, StorageError
from tensorlake.storage import Storage

__all__ = ["Problem", "VerifyReport", "verify"]

T = TypeVar("T")
R = TypeVar("R")

Progress = Callable[[int, int], None]
"""Called with ``(chunk bytes checked, chunk bytes to check)`` as the chunks are read."""

_COMMIT_ID = re.compile(r"[0-9a-f]{40}")


def verify(
    storage: Storage, resolver: LinkResolver | None = None, progress: Progress | None = None
) -> VerifyReport:
    """Check every object the dataset at ``storage`` needs (see the module's docstring);
    with ``resolver``, also that every linked object exists. Reads only.

    Raises ``DatasetNotFoundError`` when there is no dataset; any damage is in the report.
    """
    return _Verifier(storage, resolver, progress).run()


@dataclass(slots=True)
class _Expected:
    """What the chunk table says of one chunk (the first table naming it)."""

    tensor: str
    named_by: str  # the manifest (commit or staging key) that first named it
    nbytes: int
    header_nbytes: int
    rows: int  # rows in the chunk; 1 for a tile
    tile: bool
    link: bool


@dataclass(slots=True)
class _Checked:
    """One chunk's result: its problem (or None), the bytes read, the links in it."""

    problem: Problem | None
    nbytes: int = 0
    links: list[LinkedSample] = field(default_factory=list)


@dataclass(slots=True)
class _TensorTable:
    """One tensor of one manifest: its meta and where its table is."""

    manifest: str
    meta: TensorMeta
    segments: list[str]  # its leaves (for a table with an index, once that is read)
    inline: ChunkTable | None = None  # format 1 manifests hold the table itself
    index: list[str] = field(default_factory=list)  # the index segments listing its leaves
    leaves: Leaves | None = None  # what they list
    damaged: bool = False  # an index segment is damaged (reported)


class _Verifier:
    def __init__(
        self, storage: Storage, resolver: LinkResolver | None, progress: Progress | None
    ) -> None:
        self._storage = storage.unwrap()  # the stored bytes, never a cached copy
        self._resolver = resolver
        self._progress = progress
        self._threads = max(1, config.io_threads())
        self._problems: list[Problem] = []
        self._counts = {"commits": 0, "staging": 0, "segments": 0, "chunks": 0, "bytes": 0}

    def run(self) -> VerifyReport:
        try:
            root.check_format(self._storage)
        except FormatError as err:
            self._problem(keys.DATASET_META_KEY, str(err))
        tables = self._tensor_tables(self._manifests())
        self._index_segments(tables)
        segments = self._segments(tables)
        chunks = self._expected_chunks(tables, segments)
        links = self._chunks(chunks)
        checked_links = self._links(links) if self._resolver is not None else None
        return VerifyReport(
            self._storage.url,
            **self._counts,
            links=checked_links,
            problems=tuple(self._problems),
        )

    def _problem(self, key: str, message: str) -> None:
        self._problems.append(Problem(key, message))

    # -- versions ---------------------------------------------------------------------
    def _manifests(self) -> list[tuple[str, dict[str, Any]]]:
        """``(key, stored manifest)`` of every branch's staging state and every commit
        reachable from a branch head, each once."""
        storage = self._storage
        if storage.supports_listing:
            branches = records.list_branches(storage)
        else:  # read-only HTTP: the branches cannot be listed, the default one is known
            branches = [records.DEFAULT_BRANCH]
        if not branches:
            self._problem(keys.REFS_PREFIX, "no branch: the dataset has no refs/heads/ object")
        fetched = self._prefetched_commits()
        manifests: list[tuple[str, dict[str, Any]]] = []
        seen: set[str] = set()
        for branch in branches:
            ref = keys.ref_key(branch)
            try:
                head = storage.get(ref).decode("ascii").strip()
            except Exception as err:  # gone meanwhile, not ASCII
                _raise_outage(err)
                self._problem(ref, f"cannot be read: {err}")
                continue
            if not _COMMIT_ID.fullmatch(head):
                self._problem(ref, f"does not hold a commit id: {head[:60]!r}")
                continue
            staged = self._staging(branch, head)
            if staged is not None:
                manifests.append(staged)
            named_by: str = ref
            commit_id: str | None = head
            while commit_id is not None and commit_id not in seen:
                seen.add(commit_id)
                key = keys.commit_key(commit_id)
                stored = self._commit(key, commit_id, named_by, fetched.get(key))
                if stored is None:
                    break
                manifests.append((key, stored.manifest))
                parent = stored.commit.parent if stored.commit else None
                if parent is not None and not _COMMIT_ID.fullmatch(str(parent)):
                    self._problem(key, f"names a parent that is no commit id: {parent!r}")
                    break
                named_by, commit_id = key, parent
        return manifests

    def _prefetched_commits(self) -> dict[str, bytes | Exception]:
        """Every stored commit object, read concurrently (a history is a chain: walked one
        parent at a time, it would cost one round trip per commit)."""
        if not self._storage.supports_listing:
            return {}
        return dict(self._fetch_many(list(self._storage.list(keys.COMMITS_PREFIX))))

    def _commit(
        self, key: str, commit_id: str, named_by: str, data: bytes | Exception | None
    ) -> records.StoredVersion | None:
        if data is None or isinstance(data, KeyNotFoundError):
            try:
                data = self._storage.get(key)
            except KeyNotFoundError:
                what = "the head of" if named_by.startswith(keys.REFS_PREFIX) else "named by"
                self._problem(key, f"missing ({what} {named_by})")
                return None
            except Exception as err:
                data = err
        if isinstance(data, Exception):
            _raise_outage(data)
            self._problem(key, f"cannot be read: {data}")
            return None
        try:
            stored = records.decode_commit(data, commit_id)
        except FormatError as err:
            self._problem(key, str(err))
            return None
        self._counts["commits"] += 1
        if stored.commit is not None and stored.commit.id != commit_id:
            self._problem(key, f"holds commit {stored.commit.id!r}, not the one its key names")
        return stored

    def _staging(self, branch: str, head: str) -> tuple[str, dict[str, Any]] | None:
        key = keys.staging_key(branch)
        try:
            staged = records.read_staging(self._storage, branch)
        except FormatError as err:
            self._problem(key, str(err))
            return None
        except Exception as err:
            _raise_outage(err)
            self._problem(key, f"cannot be read: {err}")
            return None
        if staged is None or staged.base != head:
            return None  # none, or left by a crash mid-commit: readers ignore it, gc removes it
        self._counts["staging"] += 1
        return key, staged.manifest

    # -- manifests and table segments ---------------------------------------------------
    def _tensor_tables(self, manifests: list[tuple[str, dict[str, Any]]]) -> list[_TensorTable]:
        out = []
        for key, manifest in manifests:
            try:
                for t, named in zip(manifest["tensors"], Manifest.tables(manifest)):
                    meta = TensorMeta.from_dict(t["meta"])
                    inline = ChunkTable.from_dict(t["chunks"]) if "chunks" in t else None
                    out.append(
                        _TensorTable(key, meta, list(named.segments), inline, list(named.index))
                    )
            except FormatError as err:
                self._problem(key, f"holds an unreadable manifest: {err}")
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                self._problem(key, f"holds a malformed manifest: {err!r}")
        return out

    def _index_segments(self, tables: list[_TensorTable]) -> None:
        """Read each index segment named (once) and give its tables the leaves it lists;
        a table with a damaged one is marked so (its problem reported)."""
        first: dict[str, _TensorTable] = {}
        for t in tables:
            for key in t.index:
                first.setdefault(key, t)
        found: dict[str, Leaves | None] = {}
        for key, data in self._fetch_many(sorted(first)):
            found[key] = None
            where = f"(an index segment of tensor '{first[key].meta.name}', named by {first[key].manifest})"
            if isinstance(data, Exception):
                missing = isinstance(data, KeyNotFoundError)
                self._problem(key, f"missing {where}" if missing else f"cannot be read: {data}")
            elif keys.segment_key(data) != key:
                self._problem(key, f"does not match its hash: its bytes were changed {where}")
            else:
                self._counts["segments"] += 1
                try:
                    found[key] = unpack_index(data, f"Index segment {key}")
                except FormatError as err:
                    self._problem(key, f"cannot be decoded: {err}")
        for t in tables:
            if t.index:
                parts = [found.get(k) for k in t.index]
                if any(p is None for p in parts):
                    t.damaged = True
                    continue
                t.leaves = Leaves.concat([p for p in parts if p is not None])
                t.segments = list(t.leaves.keys)

    def _segments(self, tables: list[_TensorTable]) -> dict[str, ChunkTable | None]:
        """Each segment named, decoded (None when it is damaged: reported)."""
        first: dict[str, _TensorTable] = {}
        for t in tables:
            for key in t.segments:
                first.setdefault(key, t)
        out: dict[str, ChunkTable | None] = {}
        for key, data in self._fetch_many(sorted(first)):
            out[key] = None
            where = f"(a table segment of tensor '{first[key].meta.name}', named by {first[key].manifest})"
            if isinstance(data, KeyNotFoundError):
                self._problem(key, f"missing {where}")
                continue
            if isinstance(data, Exception):
                self._problem(key, f"cannot be read: {data}")
                continue
            self._counts["segments"] += 1
            if keys.segment_key(data) != key:
                self._problem(key, f"does not match its hash: its bytes were changed {where}")
                continue
            try:
                out[key] = ChunkTable.from_segments([data], f"Table segment {key}")
            except (FormatError, KeyError, TypeError, ValueError) as err:
                self._problem(key, f"cannot be decoded: {err}")
        return out

    def _expected_chunks(
        self, tables: list[_TensorTable], segments: dict[str, ChunkTable | None]
    ) -> dict[str, _Expected]:
        """What the tables say of each chunk (the first naming it), checking each table
        against its meta on the way. A segment many versions share is read off once."""
        chunks: dict[str, _Expected] = {}
        entered: set[tuple[str, str]] = set()  # (tensor, segment key) read off already
        for t in tables:
            name = t.meta.name
            if t.damaged:
                continue  # a damaged index segment: reported already
            if t.inline is not None:
                pieces: list[tuple[str, ChunkTable | None]] = [("", t.inline)]
            else:
                pieces = [(k, segments.get(k)) for k in t.segments]
                if any(part is None for _, part in pieces):
                    continue  # a damaged segment: reported already
            end, entries, ordered, reported = 0, 0, True, False
            for i, (key, part) in enumerate(pieces):
                assert part is not None
                row_ends = part.row_ends
                if len(row_ends) and (row_ends[0] < end or np.any(np.diff(row_ends) < 0)):
                    ordered = False
                    break
                if not key or (name, key) not in entered:
                    entered.add((name, key))
                    self._add_chunks(chunks, t, part, end)
                end = int(row_ends[-1]) if len(row_ends) else end
                entries += len(part)
                if t.leaves is not None and (
                    int(t.leaves.row_ends[i]) != end or int(t.leaves.entry_ends[i]) != entries
                ):
                    self._problem(
                        t.manifest,
                        f"tensor '{name}': its index says leaf {key} ends at row "
                        f"{int(t.leaves.row_ends[i])}, entry {int(t.leaves.entry_ends[i])}; "
                        f"the leaf ends at row {end}, entry {entries}",
                    )
                    reported = True
                    break
            if reported:
                continue
            if not ordered:
                self._problem(
                    t.manifest, f"tensor '{name}': its chunk table's rows are out of order"
                )
            elif end != t.meta.length:
                self._problem(
                    t.manifest,
                    f"tensor '{name}': its meta says {t.meta.length} rows, its chunk table "
                    f"holds {end}",
                )
        return chunks

    def _add_chunks(
        self, chunks: dict[str, _Expected], t: _TensorTable, part: ChunkTable, start: int
    ) -> None:
        """Enter the chunks of ``part``, a piece of ``t``'s table starting at row ``start``."""
        name = t.meta.name
        link = t.meta.htype.startswith("link[")
        columns = zip(
            part.column("ids").tolist(),
            part.column("nbytes").tolist(),
            part.column("header_nbytes").tolist(),
            part.column("kind").tolist(),
            np.diff(part.row_ends, prepend=start).tolist(),
        )
        for chunk_id, nbytes, header_nbytes, kind, rows in columns:
            key = keys.chunk_key(t.meta.chunks_name, chunk_id)
            if key not in chunks:
                tile = kind != KIND_ROWS
                chunks[key] = _Expected(
                    name, t.manifest, nbytes, header_nbytes, 1 if tile else rows, tile, link
                )

    # -- chunks -----------------------------------------------------------------------
    def _chunks(self, chunks: dict[str, _Expected]) -> dict[LinkedSample, str]:
        """Check every chunk; returns the links found (with their tensor) when asked."""
        total = sum(e.nbytes for e in chunks.values())
        done = 0
        if self._progress is not None:
            self._progress(0, total)
        links: dict[LinkedSample, str] = {}
        for key, checked in _concurrently(self._check_chunk, sorted(chunks.items()), self._threads):
            if checked.problem is not None:
                self._problems.append(checked.problem)
            else:
                self._counts["chunks"] += 1
            self._counts["bytes"] += checked.nbytes
            for found in checked.links:
                links.setdefault(found, chunks[key].tensor)
            done += chunks[key].nbytes
            if self._progress is not None:
                self._progress(done, total)
        return links

    def _check_chunk(self, item: tuple[str, _Expected]) -> tuple[str, _Checked]:
        key, want = item
        try:
            data = self._storage.get(key)
        except KeyNotFoundError:
            where = f"a chunk of tensor '{want.tensor}', named by {want.named_by}"
            return key, _Checked(Problem(key, f"missing ({where})"))
        except Exception as err:
            _raise_outage(err)
            return key, _Checked(Problem(key, f"cannot be read: {err}"))
        return key, _Checked(
            self._chunk_problem(key, data, want), len(data), self._rows_links(key, data, want)
        )

    def _chunk_problem(self, key: str, data: bytes, want: _Expected) -> Problem | None:
        if len(data) != want.nbytes:
            how = "truncated" if len(data) < want.nbytes else "longer than recorded"
            return Problem(key, f"is {len(data)} bytes, its chunk table says {want.nbytes} ({how})")
        try:
            chunk = Chunk(data, key)
            header = chunk.header
            if header.header_nbytes != want.header_nbytes:
                return Problem(
                    key,
                    f"its header ends at byte {header.header_nbytes}, its chunk table says "
                    f"{want.header_nbytes}",
                )
            if want.tile and (header.tile is None or header.n_rows != 1):
                return Problem(key, "its chunk table says it is a tile of one sample; it is not")
            if not want.tile and header.n_rows != want.rows:
                return Problem(key, f"holds {header.n_rows} rows, its chunk table says {want.rows}")
            chunk.verified_payload()
        except FormatError as err:
            return Problem(key, _without_key(str(err), key))
        except Exception as err:  # any other failure to decode is damage too
            return Problem(key, f"cannot be decoded: {err!r}")
        return None

    def _rows_links(self, key: str, data: bytes, want: _Expected) -> list[LinkedSample]:
        if not want.link or self._resolver is None:
            return []
        try:
            return [LinkedSample.from_stored(row) for row in Chunk(data, key).rows()]
        except Exception:  # a damaged chunk: its problem is reported by _chunk_problem
            return []

    # -- linked objects ---------------------------------------------------------------
    def _links(self, links: dict[LinkedSample, str]) -> int:
        resolver = self._resolver
        assert resolver is not None

        def check(link: LinkedSample) -> Problem | None:
            tensor = links[link]
            try:
                resolver.info(link)
            except KeyNotFoundError:
                return Problem(link.url, f"linked object does not exist (tensor '{tensor}')")
            except Exception as err:
                return Problem(
                    link.url, f"linked object cannot be checked (tensor '{tensor}'): {err}"
                )
            return None

        todo = sorted(links, key=lambda link: link.url)
        found = resolver.map_concurrently(check, todo)
        self._problems.extend(p for p in found if p is not None)
        return len(todo)

    # -- reading ----------------------------------------------------------------------
    def _fetch_many(self, names: Sequence[str]) -> Iterator[tuple[str, bytes | Exception]]:
        """``(key, bytes or the error reading it)`` for each key, concurrently."""

        def fetch(key: str) -> tuple[str, bytes | Exception]:
            try:
                return key, self._storage.get(key)
            except Exception as err:  # reported by the caller, key by key
                _raise_outage(err)
                return key, err

        return _concurrently(fetch, names, self._threads)


def _raise_outage(err: BaseException) -> None:
    """Raise ``err`` if it is a failure of the storage (an outage, denied access), not of
    the object: verify cannot tell whether the dataset is damaged, so it says so rather
    than report what it could not read as damage."""
    if isinstance(err, StorageError) and not isinstance(err, KeyNotFoundError):
        raise err


def _concurrently(fn: Callable[[T], R], items: Sequence[T], threads: int) -> Iterator[R]:
    """``fn(item)`` for every item, at most ``threads`` at a time, results as they finish;
    a window of ``2 * threads`` submitted keeps memory bounded. An error ``fn`` raises
    ends the iteration (what is running finishes first)."""
    if threads <= 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    todo = iter(items)
    with ThreadPoolExecutor(min(threads, len(items)), thread_name_prefix="tl-verify") as pool:
        running: set[Future[R]] = {pool.submit(fn, x) for x in itertools.islice(todo, 2 * threads)}
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()
                running.update(pool.submit(fn, x) for x in itertools.islice(todo, 1))


def _without_key(message: str, key: str) -> str:
    """A chunk error's message without the key it names (the problem names it)."""
    return message.replace(f" '{key}'", "")
