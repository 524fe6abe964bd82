"""A folder of source files: a local directory or an S3 prefix (any S3-compatible endpoint).

Ingestion lists a source once, in the parent, and reads each file where the transform
runs: a ``FileSource`` pickles to compute workers and reopens its storage there (clients
are created lazily, never pickled), so each worker fetches its own files. Listing an S3
prefix is paginated by the storage (any number of objects) and its reads are retried.
"""

from __future__ import annotations

import builtins
import functools
import itertools
import os
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tensorlake import config
from tensorlake.compression import detect_image_format, read_image_shape
from tensorlake.engine.htypes.sample import Sample
from tensorlake.errors import FormatError, IngestError, KeyNotFoundError, SampleError, StorageError
from tensorlake.storage import Storage, from_url

__all__ = ["IMAGE_EXTENSIONS", "FileSource", "check_image", "image_sample", "is_hidden"]

IMAGE_EXTENSIONS = {".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg", ".png": "png"}
"""File name extensions taken as images (lower-cased), and their formats."""

PREFETCH = 8  # files a process fetches ahead of the one it reads, on remote sources


def check_image(data: bytes, where: str) -> tuple[int, int, int]:
    """The (H, W, C) of a readable JPEG or PNG: its header parses and the file is not cut
    short; else a ``SampleError`` naming ``where``. Cheap: nothing is decoded (the bytes
    themselves are stored)."""
    fmt = detect_image_format(data)
    try:
        if fmt is None:
            raise FormatError("not a JPEG or PNG image")
        shape = read_image_shape(data)
    except FormatError as err:
        raise SampleError(f"{where} is not a readable image: {err}") from None
    end = data[-12:]
    if (fmt == "jpeg" and b"\xff\xd9" not in end) or (fmt == "png" and b"IEND" not in end):
        raise SampleError(f"{where} is a truncated {fmt.upper()} file (its end is missing).")
    return shape


def image_sample(data: bytes, where: str) -> Sample:
    """``data`` checked as ``check_image`` does, as a ``Sample`` that knows its format and
    shape (appending it parses nothing again)."""
    shape = check_image(data, where)
    sample = Sample(data=data)
    sample.__dict__.update(compression=detect_image_format(data), shape=shape)
    return sample


def is_hidden(key: str) -> bool:
    """A dot-file, or a file inside a dot-folder (``.DS_Store``, ``.ipynb_checkpoints/``)."""
    return key.startswith(".") or "/." in key


class FileSource:
    """The files under ``url``: a local folder, ``file://``, or ``s3://bucket/prefix``.

    ``creds`` are those of ``tl.load`` for S3 (keys, ``endpoint_url``, ``profile_name``
    ...). Keys are paths relative to the source, ``/``-separated.

    Example::

        source = FileSource("s3://digits/mnist/", creds={"endpoint_url": "http://s3:9000"})
        keys = source.list()
        data = source.read(keys[0])
    """

    def __init__(
        self,
        url: str | os.PathLike[str],
        creds: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        text = os.fspath(url)
        if not isinstance(text, str) or not text:
            raise IngestError(f"A source is a local folder or an s3:// prefix, got {url!r}.")
        self.remote = text.startswith("s3://")
        if not self.remote:
            if creds:
                raise IngestError(f"src_creds are for s3:// sources, not for {text!r}.")
            path = os.path.abspath(os.path.expanduser(text.removeprefix("file://")))
            if not os.path.isdir(path):
                what = "is a file, not a folder" if os.path.exists(path) else "does not exist"
                raise IngestError(f"The source folder {path} {what}.")
            text = path
        self.url = text.rstrip("/") if self.remote else text
        # how reports, records and messages name the source (an archive's files are read
        # from a temporary folder, but belong to the archive's URL)
        self.name = name or self.url
        self.creds = dict(creds) if creds else None
        self._storage: Storage | None = None
        self._prefetch: _Prefetcher | None = None
        self._pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:  # workers reopen the storage themselves
        return {"url": self.url, "creds": self.creds, "remote": self.remote, "name": self.name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.url, self.creds, self.remote = state["url"], state["creds"], state["remote"]
        self.name = state["name"]
        self._storage = None
        self._prefetch = None
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"FileSource({self.url!r})"

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            try:
                self._storage = from_url(self.url, creds=self.creds, read_only=True)
            except ValueError as err:
                raise IngestError(f"Cannot open the source {self.url}: {err}") from err
        return self._storage

    def list(self) -> list[str]:
        """Every file's key, sorted; ``IngestError`` when the source cannot be listed."""
        try:
            keys = sorted(self.storage.list(""))
        except StorageError as err:
            raise IngestError(
                f"Cannot list the source {self.url}: {err}. Check the bucket name, the "
                "endpoint_url and the credentials (src_creds)."
            ) from err
        return keys

    def empty_folders(self, depth: int) -> builtins.list[str]:
        """The names of the folders ``depth`` levels down that hold no file at all (not
        hidden). Local sources only: an S3 prefix has no empty folders."""
        if self.remote:
            return []
        at_depth: set[str] = set()
        with_files: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(self.url):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = os.path.relpath(dirpath, self.url)
            parts = [] if rel == "." else rel.split(os.sep)
            if len(parts) == depth:
                at_depth.add("/".join(parts))
            if any(not f.startswith(".") for f in filenames):
                for i in range(1, len(parts) + 1):
                    with_files.add("/".join(parts[:i]))
        return sorted({path.rsplit("/", 1)[-1] for path in at_depth - with_files})

    def read(self, key: str) -> bytes:
        """The bytes of one file (``IngestError`` naming it when it is gone)."""
        try:
            if not self.remote:  # a listed key of a local folder is a plain relative path
                with open(self.location(key), "rb") as f:
                    return f.read()
            if self._prefetch is not None and self._pid == os.getpid():
                return self._prefetch.take(key)
            return self.storage.get(key)
        except (KeyNotFoundError, FileNotFoundError) as err:
            raise IngestError(
                f"{self.location(key)} vanished since the source was listed."
            ) from err
        except OSError as err:
            raise IngestError(f"Cannot read {self.location(key)}: {err}") from err

    def read_head(self, key: str, nbytes: int) -> bytes:
        """The first ``nbytes`` of a file (one ranged read on S3)."""
        return self.storage.get_range(key, 0, nbytes)

    def read_ahead(self, keys: Iterable[str]) -> None:
        """Start fetching ``keys`` (the file about to be read, then the next ones, in
        order) in the background, on a remote source; a local one reads on demand.
        Files fetched earlier and not among ``keys`` are dropped."""
        if not self.remote:
            return
        if self._prefetch is None or self._pid != os.getpid():  # threads do not survive a fork
            self._prefetch = _Prefetcher(self.storage)
            self._pid = os.getpid()
        self._prefetch.want(keys)

    def record(self, key: str) -> str:
        """How a file is named in records and messages: its ``location``, or under the
        source's ``name`` when it has one of its own (``<archive URL>/<path>``)."""
        return f"{self.name}/{key}" if self.name != self.url else self.location(key)

    def location(self, key: str) -> str:
        """Where a file is, for messages and links: a local path or an ``s3://`` URL."""
        if self.remote:
            return f"{self.url}/{key}"
        return self._folder + (key if os.sep == "/" else key.replace("/", os.sep))

    @functools.cached_property
    def _folder(self) -> str:
        return self.url if self.url.endswith(os.sep) else self.url + os.sep


class _Prefetcher:
    """Fetches the next files of a remote source while the current one is processed:
    the window of ``PREFETCH`` files after it; files that fell out of the window (read
    by another worker) are dropped."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._pool = ThreadPoolExecutor(
            min(PREFETCH, config.io_threads()), thread_name_prefix="tl-ingest-fetch"
        )
        self._pending: dict[str, Future[bytes]] = {}
        self._lock = threading.Lock()

    def want(self, keys: Iterable[str]) -> None:
        window = list(itertools.islice(keys, PREFETCH))
        with self._lock:
            for key in [k for k in self._pending if k not in window]:
                self._pending.pop(key).cancel()
            for key in window:
                if key not in self._pending:
                    self._pending[key] = self._pool.submit(self._storage.get, key)

    def take(self, key: str) -> bytes:
        with self._lock:
            future = self._pending.pop(key, None)
        if future is None:
            return self._storage.get(key)
        return future.result()
