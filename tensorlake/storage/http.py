"""``HTTPStorage``: read-only objects under an HTTP(S) base URL, for links and archives.

Only the standard library (``urllib.request``) is used. Keys are appended to the
base URL's path, each component percent-quoted; a query string on the base URL
(a signature, a token) is kept on every request. Servers that ignore ``Range``
still work: the whole body is fetched and sliced.
"""

from __future__ import annotations

import http.client
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from email.message import Message
from typing import Any, Self

from tensorlake import config
from tensorlake.errors import ReadOnlyError, StorageError
from tensorlake.storage.base import Bytes, ObjectInfo, Storage, threaded_get_many

__all__ = ["HTTPStorage"]

_RETRY_STATUSES = {429, 500, 502, 503, 504}
_NETWORK_ERRORS = (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException)


class HTTPStorage(Storage):
    """Read-only objects at ``base_url/<key>``; writes and ``list`` are refused.

    429, 5xx answers, resets, broken bodies and timeouts are retried with jittered
    exponential backoff; ``timeout`` and ``max_attempts`` default to
    ``TENSORLAKE_HTTP_TIMEOUT`` and ``TENSORLAKE_HTTP_MAX_ATTEMPTS``.

    Example::

        store = HTTPStorage("https://example.com/datasets/mnist")
        header = store.get_range("tensors/images/chunks/0", 0, 4096)
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | None = None,
        max_attempts: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(read_only=True)
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"HTTPStorage needs an http(s):// URL, got {base_url!r}")
        self._base_url = base_url
        self._parts = parts._replace(path=parts.path.rstrip("/"), fragment="")
        # None: the TENSORLAKE_HTTP_* setting (tensorlake.config), read now
        self._timeout = config.http_timeout() if timeout is None else timeout
        attempts = config.http_max_attempts() if max_attempts is None else max_attempts
        self._max_attempts = max(1, attempts)
        self._headers = dict(headers or {})
        self._opener: urllib.request.OpenerDirector | None = None

    @property
    def url(self) -> str:
        return self._base_url

    @property
    def supports_listing(self) -> bool:
        """False: HTTP has no listing; ``list`` raises ``StorageError``."""
        return False

    def with_read_only(self, read_only: bool = True) -> Self:
        if not read_only:
            raise ReadOnlyError(f"{self.url} is HTTP storage, which is always read-only")
        return self

    def _check_writable(self, op: str, key: str) -> None:
        raise ReadOnlyError(
            f"cannot {op} {key!r}: {self.url} is HTTP storage, which is always read-only; "
            "copy the data to local or S3 storage to modify it",
            key=key,
        )

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_opener": None}

    def key_url(self, key: str) -> str:
        """The URL an object is fetched from."""
        quoted = "/".join(urllib.parse.quote(part, safe="") for part in key.split("/"))
        return urllib.parse.urlunsplit(self._parts._replace(path=f"{self._parts.path}/{quoted}"))

    # --- requests -------------------------------------------------------------

    def _request(
        self,
        method: str,
        key: str,
        headers: dict[str, str] | None = None,
        accept: frozenset[int] = frozenset(),
    ) -> tuple[int, Message, bytes]:
        """Send one request with retries; return (status, headers, body).

        404/410 raise ``KeyNotFoundError``; a status in ``accept`` is returned to the
        caller; 429/5xx and network errors are retried with backoff; anything else
        raises ``StorageError``.
        """
        if self._opener is None:
            self._opener = urllib.request.build_opener()
        url = self.key_url(key)
        request_headers = {**self._headers, **(headers or {})}
        last: Exception | None = None
        for attempt in range(self._max_attempts):
            if attempt:
                time.sleep(random.uniform(0, min(5.0, 0.1 * 2**attempt)))
            request = urllib.request.Request(url, method=method, headers=request_headers)
            try:
                with self._opener.open(request, timeout=self._timeout) as response:
                    body = b"" if method == "HEAD" else response.read()
                    return response.status, response.headers, body
            except urllib.error.HTTPError as err:
                with err:
                    status = err.code
                    if status in (404, 410):
                        raise self._missing(key) from err
                    if status in accept:
                        return status, err.headers, b""
                    if status in _RETRY_STATUSES:
                        last = err
                        continue
                    raise StorageError(
                        f"cannot {method} {url}: HTTP {status} {err.reason}", key=key
                    ) from err
            except _NETWORK_ERRORS as err:
                last = err
        raise StorageError(
            f"cannot {method} {url} after {self._max_attempts} attempts: {last}", key=key
        ) from last

    # --- reads ----------------------------------------------------------------

    def _get(self, key: str) -> bytes:
        return self._request("GET", key)[2]

    def _get_range(self, key: str, start: int, end: int) -> bytes:
        status, _, body = self._request(
            "GET", key, {"Range": f"bytes={start}-{end - 1}"}, accept=frozenset({416})
        )
        if status == 416:  # the range starts at or past the end
            return b""
        if status == 206:
            return body[: end - start]
        return body[start:end]  # the server ignored Range and sent everything

    def _get_many(self, keys: list[str]) -> Iterator[tuple[str, bytes]]:
        return threaded_get_many(self._get, keys)

    def _get_versioned(self, key: str) -> tuple[bytes, ObjectInfo]:
        _, headers, body = self._request("GET", key)
        return body, ObjectInfo(size=len(body), version=_version(headers))

    def _info(self, key: str) -> ObjectInfo:
        status, headers, _ = self._request("HEAD", key, accept=frozenset({403, 405, 501}))
        length = headers.get("Content-Length")
        if status < 300 and length is not None:
            return ObjectInfo(size=int(length), version=_version(headers))
        # HEAD refused or without a length: ask for the first byte instead.
        status, headers, body = self._request(
            "GET", key, {"Range": "bytes=0-0"}, accept=frozenset({416})
        )
        total = (headers.get("Content-Range") or "").rpartition("/")[2]
        if status in (206, 416) and total.isdigit():
            size = int(total)
        elif status == 416:
            size = 0
        else:
            size = len(body)
        return ObjectInfo(size=size, version=_version(headers))

    def _list(self, prefix: str) -> Iterator[str]:
        raise StorageError(
            f"HTTP storage cannot list keys ({self.url}); read the keys from a manifest instead"
        )

    # --- writes (always refused before reaching these) -------------------------

    def _put(self, key: str, data: Bytes) -> None:
        self._check_writable("put", key)

    def _put_if_absent(self, key: str, data: Bytes) -> bool:
        self._check_writable("put_if_absent", key)
        return False

    def _delete(self, key: str) -> None:
        self._check_writable("delete", key)

    @classmethod
    def open_url(
        cls, url: str, creds: dict[str, Any] | None = None, read_only: bool = False
    ) -> HTTPStorage:
        """Open ``http(s)://...``; HTTP storage is read-only whatever ``read_only`` says."""
        cls._refuse_creds(url, creds)
        return cls(url)


def _version(headers: Message) -> str:
    return headers.get("ETag") or headers.get("Last-Modified") or ""
