"""Opening linked objects: credentials by key (populated in memory, or managed: resolved
by each process, ``managed.py``), one storage per root, and
what ingest learns about each object (format, shape, and its version: S3 ETag, HTTP
ETag / Last-Modified, local mtime+inode), so a reader can tell when a bucket changed
under a dataset."""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from tensorlake import config
from tensorlake.compression import detect_image_format, read_image_shape
from tensorlake.engine.links.managed import resolve_managed
from tensorlake.engine.links.sample import LinkedSample
from tensorlake.errors import DatasetError, FormatError, KeyNotFoundError, SampleError
from tensorlake.storage import HTTPStorage, ObjectInfo, Storage, from_url

__all__ = ["LinkResolver", "LinkedObject"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class LinkedObject:
    """What ingest learned about a linked object (the sample info row)."""

    format: str | None
    size: int
    shape: tuple[int, ...]
    version: str

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "size": self.size,
            "shape": list(self.shape),
            "version": self.version,
        }


class LinkResolver:
    """Opens linked objects: credentials by key and one storage per root.

    A key's credentials are, first, those populated in this session (``set_creds``,
    memory only); else, for a managed key, what this process finds in its environment
    or AWS profile files (``resolve_managed``: used to open the storage, never kept, so
    never pickled); else an error.
    """

    def __init__(self, creds_keys: list[str], managed: frozenset[str] = frozenset()) -> None:
        self.creds_keys = creds_keys  # the dataset's list (stored, names only)
        self.managed = managed  # the keys each process resolves itself (stored, names only)
        self.creds: dict[str, dict[str, Any] | None] = {}  # populated secrets, never stored
        self._storages: dict[tuple[str, str, str | None], Storage] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # to compute workers: the keys and the populated creds; a worker resolves the
        # managed keys itself, so no secret found in this process's environment travels
        return {
            "creds_keys": list(self.creds_keys),
            "managed": sorted(self.managed),
            "creds": dict(self.creds),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["creds_keys"], frozenset(state.get("managed", ())))  # type: ignore[misc]
        self.creds = state["creds"]

    # -- credentials -------------------------------------------------------------------
    def check_key(self, key: str | None) -> None:
        if key is not None and key not in self.creds_keys:
            raise SampleError(
                f"creds key '{key}' is not in the dataset. Add it with "
                f"ds.add_creds_key('{key}', managed=True) (each process finds the "
                f"credentials in its environment or AWS profile '{key}'), or with "
                f"ds.add_creds_key('{key}') and give them with "
                f"ds.populate_creds('{key}', {{...}}). Known keys: {self.creds_keys}."
            )

    def set_creds(self, key: str, creds: dict[str, Any] | None) -> None:
        with self._lock:
            self.creds[key] = dict(creds) if creds is not None else None
            self._forget(key)

    def set_managed(self, managed: frozenset[str]) -> None:
        """Which keys are managed (a dataset version's setting)."""
        with self._lock:
            for key in self.managed ^ managed:
                self._forget(key)
            self.managed = managed

    def _forget(self, key: str) -> None:
        for cached in [k for k in self._storages if k[2] == key]:
            del self._storages[cached]  # reopen with the new credentials

    def _creds(self, key: str | None) -> dict[str, Any] | None:
        if key is None:
            return None  # the environment's default credentials
        if key in self.creds:
            return self.creds[key]  # populated in this session: overrides a managed key
        if key in self.managed:
            return resolve_managed(key)
        raise DatasetError(
            f"No credentials for creds key '{key}' in this session: they are never "
            f"stored with the dataset. Call ds.populate_creds('{key}', {{...}}) first, or "
            f"make the key managed, ds.add_creds_key('{key}', managed=True), to have each "
            "process find them in its environment or AWS profile files."
        )

    # -- objects -----------------------------------------------------------------------
    def locate(self, link: LinkedSample) -> tuple[Storage, str]:
        """The storage holding ``link``'s object, and its key there."""
        parts = urllib.parse.urlsplit(link.url)
        scheme = parts.scheme.lower()
        if scheme == "file":
            path = urllib.parse.unquote(parts.path) if parts.netloc == "" else link.url[7:]
            root, key = "/", path.lstrip("/")
        elif scheme == "s3":
            root, key = parts.netloc, parts.path.lstrip("/")
        else:
            # the URL as it was given, byte for byte: a presigned URL's signature covers
            # its exact path and query, which re-quoting would break
            root = f"{scheme}://{parts.netloc}"
            key = link.url.split("#", 1)[0][len(root) :].lstrip("/")
        if not key:
            raise SampleError(f"link {link.url!r} names no object.")
        cache_key = (scheme, root, link.creds_key)
        with self._lock:
            storage = self._storages.get(cache_key)
            if storage is None:
                if scheme == "s3":
                    creds = self._creds(link.creds_key)
                    storage = from_url(f"s3://{root}", creds=creds, read_only=True)
                elif scheme in ("http", "https"):
                    storage = _ExactURLStorage(root)
                else:  # the scheme registry imports each provider on first use
                    storage = from_url(root if scheme != "file" else "/", read_only=True)
                self._storages[cache_key] = storage
        return storage, key

    def fetch(self, link: LinkedSample) -> tuple[bytes, ObjectInfo]:
        storage, key = self.locate(link)
        return storage.get_versioned(key)

    def info(self, link: LinkedSample) -> ObjectInfo:
        storage, key = self.locate(link)
        return storage.info(key)

    def inspect(self, link: LinkedSample, compression: str | None) -> LinkedObject:
        """Fetch ``link`` and check it is an image of ``compression`` (``verify=True``)."""
        try:
            data, info = self.fetch(link)
        except KeyNotFoundError:
            raise SampleError(f"linked object {link.url} does not exist.") from None
        found = detect_image_format(data)
        if compression is not None and found != compression:
            what = f"a {found} image" if found else "not an image"
            raise SampleError(
                f"linked object {link.url} is {what}, but the tensor's sample_compression "
                f"is {compression!r}."
            )
        try:
            shape = read_image_shape(data)
        except FormatError as err:
            raise SampleError(f"linked object {link.url} is not a readable image: {err}") from err
        return LinkedObject(found, info.size, tuple(shape), info.version)

    def inspect_many(
        self, values: Sequence[Any], compression: str | None
    ) -> dict[LinkedSample, LinkedObject | Exception]:
        """Fetch and check the objects of many link rows concurrently, before they are
        encoded one by one; each result is a ``LinkedObject`` or the error to raise."""
        todo = list({v for v in values if isinstance(v, LinkedSample)})

        def one(link: LinkedSample) -> LinkedObject | Exception:
            try:
                self.check_key(link.creds_key)
                return self.inspect(link, compression)
            except Exception as err:  # raised again when its row is encoded
                return err

        return dict(zip(todo, self.map_concurrently(one, todo)))

    def map_concurrently(self, fn: Callable[[T], R], links: Sequence[T]) -> list[R]:
        """``[fn(link) for link in links]`` on a bounded thread pool (order kept)."""
        if len(links) <= 1:
            return [fn(x) for x in links]
        workers = min(config.io_threads(), len(links))
        with ThreadPoolExecutor(workers, thread_name_prefix="tl-links") as pool:
            return list(pool.map(fn, links))


_URL_SAFE = "!$%&'()*+,/:;=?@[]~"
"""Characters kept as they are in a linked URL's path and query: all a URL may hold,
``%`` included, so escapes already there are not escaped again."""


class _ExactURLStorage(HTTPStorage):
    """HTTP objects at ``<root>/<key>`` with the key (a linked URL's path and query) kept
    as given; only characters no URL may hold (spaces, non-ASCII) are percent-encoded."""

    def key_url(self, key: str) -> str:
        return f"{self.url}/{urllib.parse.quote(key, safe=_URL_SAFE)}"
