"""``S3Storage``: objects under a prefix of an S3 (or S3-compatible) bucket, via boto3.

Retries: botocore's ``standard`` (or ``adaptive``) retry mode handles throttling,
5xx responses, connection errors and timeouts with jittered exponential backoff, a
bounded number of attempts (``TENSORLAKE_S3_MAX_ATTEMPTS``, timeouts
``TENSORLAKE_S3_CONNECT_TIMEOUT`` / ``TENSORLAKE_S3_READ_TIMEOUT``); this
module adds retries only where botocore has none (a broken response body, a
409 ``ConditionalRequestConflict`` on conditional writes).

The boto3 client is created on first use, once per process (it is thread-safe
and shared by the threads of ``get_many``), and never pickled.
"""

from __future__ import annotations

import functools
import io
import os
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import boto3
import botocore.exceptions
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore import UNSIGNED
from botocore.config import Config

from tensorlake import config
from tensorlake.errors import KeyNotFoundError, StorageArgumentError, StorageError
from tensorlake.storage.base import Bytes, ObjectInfo, Storage, check_key, threaded_get_many

__all__ = ["S3Storage"]

T = TypeVar("T")

CREDS_KEYS = (
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_region",
    "region_name",
    "endpoint_url",
    "profile_name",
    "anonymous",
)
"""Keys accepted in ``creds`` (``aws_region`` and ``region_name`` are synonyms)."""

MULTIPART_THRESHOLD = 64 * 1024 * 1024
"""Objects this large or larger are uploaded in parts, concurrently."""

_AUTH_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "403",
    "Forbidden",
}
_BODY_ERRORS = (
    botocore.exceptions.IncompleteReadError,
    botocore.exceptions.ResponseStreamingError,
    botocore.exceptions.ReadTimeoutError,
)
_MAX_PARTS = 10_000


def _backoff(attempt: int, base: float = 0.05, cap: float = 5.0) -> None:
    time.sleep(random.uniform(0, min(cap, base * 2**attempt)))


# whether a server honours If-None-Match, by (endpoint, bucket): probed once per process
_conditional: dict[tuple[str | None, str], bool] = {}
_conditional_lock = threading.Lock()
_PROBE_PREFIX = "lock.probe-"
_sessions_lock = threading.Lock()
_sessions: dict[tuple, boto3.session.Session] = {}


def _session(profile_name: str | None) -> boto3.session.Session:
    """A boto3 session shared by the clients of this process (making one costs ~0.1 s).

    Keyed by profile and the ``AWS_*`` environment, so a changed environment is
    seen by the next client made.
    """
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))
    key = (os.getpid(), profile_name, env)
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            session = _sessions[key] = boto3.session.Session(profile_name=profile_name)
        return session


class S3Storage(Storage):
    """Objects in ``s3://bucket/prefix``.

    ``creds`` may hold ``aws_access_key_id``, ``aws_secret_access_key``,
    ``aws_session_token``, ``aws_region`` (or ``region_name``), ``endpoint_url``
    (any S3-compatible server; path-style addressing is used then) and
    ``profile_name``; ``anonymous=True`` sends unsigned requests (public buckets).
    ``max_attempts``, ``retry_mode`` and the timeouts default to the
    ``TENSORLAKE_S3_*`` settings (``tensorlake.config``).
    Whatever it leaves out comes from the standard AWS chain
    (environment, ``~/.aws``, instance role).

    Example::

        store = S3Storage("my-bucket", "datasets/coco", creds={"aws_region": "eu-west-1"})
        store.put("tensorlake.json", b"{}")
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        creds: dict[str, Any] | None = None,
        *,
        read_only: bool = False,
        max_attempts: int | None = None,
        retry_mode: str | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        multipart_chunksize: int = 16 * 1024 * 1024,
    ) -> None:
        super().__init__(read_only=read_only)
        if not bucket or "/" in bucket:
            raise StorageArgumentError(f"invalid S3 bucket name {bucket!r}")
        if creds is not None and not isinstance(creds, Mapping):  # not shown: may be a secret
            raise StorageArgumentError(
                f"S3 creds must be a dict such as {{'aws_access_key_id': ..., "
                f"'aws_secret_access_key': ...}}, got a {type(creds).__name__}"
            )
        creds = dict(creds or {})
        unknown = sorted(set(creds) - set(CREDS_KEYS))
        if unknown:
            raise StorageArgumentError(
                f"unknown S3 creds key(s) {unknown}; accepted keys are {sorted(CREDS_KEYS)}"
            )
        if "aws_region" in creds and "region_name" in creds:
            raise StorageArgumentError(
                "pass only one of creds['aws_region'] and creds['region_name']"
            )
        # None: the TENSORLAKE_S3_* setting (tensorlake.config), read now
        max_attempts = config.s3_max_attempts() if max_attempts is None else max_attempts
        retry_mode = config.s3_retry_mode() if retry_mode is None else retry_mode
        if connect_timeout is None:
            connect_timeout = config.s3_connect_timeout()
        if read_timeout is None:
            read_timeout = config.s3_read_timeout()
        if max_attempts < 1:
            raise StorageArgumentError(f"max_attempts must be at least 1, got {max_attempts}")
        if retry_mode not in ("standard", "adaptive"):
            raise StorageArgumentError(
                f"retry_mode must be 'standard' or 'adaptive', got {retry_mode!r}"
            )
        prefix = prefix.strip("/")
        if prefix:
            check_key(prefix)
        self._bucket = bucket
        self._prefix = prefix
        self._root = f"{prefix}/" if prefix else ""
        self._creds = creds
        self._max_attempts = max_attempts
        self._retry_mode = retry_mode
        self._timeouts = (connect_timeout, read_timeout)
        self._multipart = (multipart_threshold, multipart_chunksize)
        self._lock = threading.Lock()
        self._client_obj: Any = None
        self._client_pid = 0

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def prefix(self) -> str:
        """The prefix inside the bucket, without leading or trailing ``/``."""
        return self._prefix

    @property
    def url(self) -> str:
        return f"s3://{self._bucket}/{self._prefix}" if self._prefix else f"s3://{self._bucket}"

    # --- client lifecycle -----------------------------------------------------

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_lock"] = None
        state["_client_obj"] = None
        state["_client_pid"] = 0
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            client, self._client_obj = self._client_obj, None
        if client is not None:
            client.close()

    @property
    def client(self) -> Any:
        """The boto3 S3 client this storage uses (made on first use in each process, from
        its creds: endpoint, retries, timeouts), for work it has no method for, such as
        managed multipart transfers of files."""
        return self._client

    @property
    def _client(self) -> Any:
        pid = os.getpid()
        if self._client_obj is None or self._client_pid != pid:
            with self._lock:
                if self._client_obj is None or self._client_pid != pid:
                    try:
                        self._client_obj = self._make_client()
                    except ValueError as err:  # botocore's "Invalid endpoint: ..."
                        raise StorageArgumentError(
                            f"cannot connect to {self.url}: {err}; check creds['endpoint_url'] "
                            "(a URL such as http://127.0.0.1:9000) and creds['aws_region']"
                        ) from err
                    self._client_pid = pid
        return self._client_obj

    def _make_client(self) -> Any:
        creds = self._creds
        options: dict[str, Any] = {
            "retries": {"mode": self._retry_mode, "total_max_attempts": self._max_attempts},
            "connect_timeout": self._timeouts[0],
            "read_timeout": self._timeouts[1],
            "max_pool_connections": max(10, config.io_threads()),
        }
        if creds.get("endpoint_url"):
            options["s3"] = {"addressing_style": "path"}
        if creds.get("anonymous"):  # a public bucket: unsigned requests, no keys looked up
            options["signature_version"] = UNSIGNED
        session = _session(creds.get("profile_name"))
        with _sessions_lock:  # boto3 sessions are not thread-safe; clients are
            return session.client(
                "s3",
                endpoint_url=creds.get("endpoint_url"),
                region_name=creds.get("aws_region") or creds.get("region_name"),
                aws_access_key_id=creds.get("aws_access_key_id"),
                aws_secret_access_key=creds.get("aws_secret_access_key"),
                aws_session_token=creds.get("aws_session_token"),
                config=Config(**options),
            )

    # --- error translation ----------------------------------------------------

    def _call(self, op: str, key: str | None, fn: Callable[[], T]) -> T:
        """Run one S3 operation, translating botocore errors into tensorlake ones."""
        try:
            return fn()
        except S3UploadFailedError as err:
            cause = err.__cause__ or err.__context__
            if isinstance(cause, botocore.exceptions.ClientError):
                raise self._translate(op, key, cause) from err
            raise StorageError(f"cannot {op} {key!r} in {self.url}: {err}", key=key) from err
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as err:
            raise self._translate(op, key, err) from err

    def _translate(self, op: str, key: str | None, err: Exception) -> Exception:
        what = f"{op} {key!r} in {self.url}" if key else f"{op} {self.url}"
        endpoint = self._creds.get("endpoint_url") or "AWS S3"
        if isinstance(err, botocore.exceptions.NoCredentialsError):
            return StorageError(
                f"cannot {what}: no AWS credentials found; pass creds={{'aws_access_key_id': ..., "
                "'aws_secret_access_key': ...}} or configure the AWS credential chain "
                "(environment variables, ~/.aws, instance role)",
                key=key,
            )
        if not isinstance(err, botocore.exceptions.ClientError):
            return StorageError(f"cannot {what} at {endpoint}: {err}", key=key)
        code = str(err.response.get("Error", {}).get("Code", ""))
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = err.response.get("Error", {}).get("Message", "")
        if code == "NoSuchBucket":
            return StorageError(
                f"cannot {what}: bucket {self._bucket!r} does not exist at {endpoint}; "
                "create it first or check the URL",
                key=key,
            )
        if key is not None and code in ("NoSuchKey", "404", "NotFound"):
            return self._missing(key)
        if code in _AUTH_CODES:
            return StorageError(
                f"cannot {what}: access denied ({code}); check the `creds` passed to "
                "tensorlake (aws_access_key_id, aws_secret_access_key, aws_session_token) "
                "or your AWS credentials and their permissions on this bucket",
                key=key,
            )
        return StorageError(
            f"cannot {what}: S3 error {code or status} (HTTP {status}) {message}".rstrip(),
            key=key,
        )

    def _full(self, key: str) -> str:
        return self._root + key

    # --- reads ----------------------------------------------------------------

    def _read_object(self, op: str, key: str, **kwargs: Any) -> bytes:
        return self._read_response(op, key, **kwargs)[0]

    def _read_response(self, op: str, key: str, **kwargs: Any) -> tuple[bytes, dict]:
        """GET and read the body, retrying when the body breaks off mid-stream."""
        for attempt in range(4):
            response = self._call(
                op,
                key,
                lambda: self._client.get_object(Bucket=self._bucket, Key=self._full(key), **kwargs),
            )
            try:
                return response["Body"].read(), response
            except _BODY_ERRORS as err:
                if attempt == 3:
                    raise self._translate(op, key, err) from err
                _backoff(attempt)
        raise AssertionError("unreachable")

    def _get(self, key: str) -> bytes:
        return self._read_object("get", key)

    def _get_versioned(self, key: str) -> tuple[bytes, ObjectInfo]:
        data, response = self._read_response("get", key)
        return data, ObjectInfo(size=len(data), version=response["ETag"].strip('"'))

    def _get_range(self, key: str, start: int, end: int) -> bytes:
        try:
            return self._read_object("get_range", key, Range=f"bytes={start}-{end - 1}")
        except StorageError as err:
            cause = err.__cause__
            if isinstance(cause, botocore.exceptions.ClientError) and (
                cause.response.get("Error", {}).get("Code") == "InvalidRange"
            ):
                return b""  # the range starts at or past the end of the object
            raise

    def _get_many(self, keys: list[str]) -> Iterator[tuple[str, bytes]]:
        return threaded_get_many(self._get, keys)

    def _head(self, key: str) -> dict | None:
        try:
            return self._call(
                "stat",
                key,
                lambda: self._client.head_object(Bucket=self._bucket, Key=self._full(key)),
            )
        except KeyNotFoundError:
            return None

    def _exists(self, key: str) -> bool:
        return self._head(key) is not None

    def _info(self, key: str) -> ObjectInfo:
        head = self._head(key)
        if head is None:
            raise self._missing(key)
        return ObjectInfo(size=int(head["ContentLength"]), version=head["ETag"].strip('"'))

    def _list(self, prefix: str) -> Iterator[str]:
        def pages() -> list[str]:
            paginator = self._client.get_paginator("list_objects_v2")
            found: list[str] = []
            for page in paginator.paginate(Bucket=self._bucket, Prefix=self._full(prefix)):
                found.extend(obj["Key"] for obj in page.get("Contents", ()))
            return found

        keys = []
        for full in self._call("list", None, pages):
            key = full[len(self._root) :]
            try:
                keys.append(check_key(key))
            except ValueError:  # e.g. a "folder/" marker made by the S3 console
                continue
        return iter(sorted(keys))

    # --- writes ---------------------------------------------------------------

    def _put(self, key: str, data: Bytes) -> None:
        body = data if isinstance(data, bytes) else bytes(data)
        threshold, chunksize = self._multipart
        if len(body) < threshold:
            self._call(
                "put",
                key,
                lambda: self._client.put_object(
                    Bucket=self._bucket, Key=self._full(key), Body=body
                ),
            )
            return
        transfer = TransferConfig(
            multipart_threshold=threshold,
            multipart_chunksize=max(chunksize, -(-len(body) // _MAX_PARTS)),
            max_concurrency=max(1, config.io_threads()),
        )
        self._call(
            "put",
            key,
            lambda: self._client.upload_fileobj(
                io.BytesIO(body), self._bucket, self._full(key), Config=transfer
            ),
        )

    def _put_if_absent(self, key: str, data: Bytes) -> bool:
        body = data if isinstance(data, bytes) else bytes(data)
        for attempt in range(8):
            try:
                self._client.put_object(
                    Bucket=self._bucket, Key=self._full(key), Body=body, IfNoneMatch="*"
                )
                return True
            except botocore.exceptions.ClientError as err:
                code = err.response.get("Error", {}).get("Code")
                meta = err.response.get("ResponseMetadata", {})
                status = meta.get("HTTPStatusCode")
                if status == 412 or code == "PreconditionFailed":
                    # After a retried request, the object may be our own first attempt
                    # whose response was lost; the same bytes mean we won.
                    return bool(meta.get("RetryAttempts")) and self._holds(key, body)
                if status == 409 or code == "ConditionalRequestConflict":
                    _backoff(attempt)
                    continue
                raise self._translate("put_if_absent", key, err) from err
            except botocore.exceptions.BotoCoreError as err:
                raise self._translate("put_if_absent", key, err) from err
        raise StorageError(
            f"cannot put_if_absent {key!r} in {self.url}: concurrent writers kept conflicting",
            key=key,
        )

    @property
    def conditional_writes(self) -> bool:
        """Whether the server honours ``If-None-Match: *`` (some S3-compatible servers
        ignore it and overwrite). Probed on first use, once per process for each endpoint
        and bucket: a property of the server, so it is never stored with a dataset (a
        copy on another server must not inherit the answer). Read-only storage writes
        nothing, and answers True without probing."""
        if self.read_only:
            return True
        where = (self._creds.get("endpoint_url"), self._bucket)
        with _conditional_lock:  # held while probing: one probe, not one per thread
            known = _conditional.get(where)
            if known is None:
                known = _conditional[where] = self._probe_conditional_writes()
            return known

    def _probe_conditional_writes(self) -> bool:
        """Create a fresh object twice with ``If-None-Match: *``: a server that honours
        it refuses the second (412) and keeps the first bytes."""
        key = f"{_PROBE_PREFIX}{secrets.token_hex(8)}"
        try:
            first = self._put_if_absent(key, b"first")
            second = self._put_if_absent(key, b"second")
            return first and not second and self._get(key) == b"first"
        except StorageError as err:
            cause = err.__cause__
            if isinstance(cause, botocore.exceptions.ClientError):
                response = cause.response
                status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status == 501 or response.get("Error", {}).get("Code") == "NotImplemented":
                    return False  # the server refuses the header outright
            raise
        finally:
            try:
                self._delete(key)
            except StorageError:
                pass  # a stray probe object: harmless, removed with the dataset

    def _holds(self, key: str, body: bytes) -> bool:
        try:
            return self._get(key) == body
        except KeyNotFoundError:
            return False

    def _delete(self, key: str) -> None:
        self._call(
            "delete",
            key,
            lambda: self._client.delete_object(Bucket=self._bucket, Key=self._full(key)),
        )

    def _delete_many(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            batch = [{"Key": self._full(k)} for k in keys[i : i + 1000]]
            response = self._call("delete", keys[i], functools.partial(self._delete_batch, batch))
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                bad = str(first.get("Key", ""))[len(self._root) :]
                raise StorageError(
                    f"cannot delete {len(errors)} object(s) in {self.url}, e.g. {bad!r}: "
                    f"{first.get('Code')} {first.get('Message', '')}".rstrip(),
                    key=bad,
                )

    def _delete_batch(self, batch: list[dict[str, str]]) -> Any:
        """One DeleteObjects request (at most 1000 keys); called through ``_call``."""
        return self._client.delete_objects(
            Bucket=self._bucket, Delete={"Objects": batch, "Quiet": True}
        )

    # --- URLs -----------------------------------------------------------------

    @classmethod
    def open_url(
        cls, url: str, creds: dict[str, Any] | None = None, read_only: bool = False
    ) -> S3Storage:
        """Open ``s3://bucket[/prefix]``."""
        rest = url.split("://", 1)[1]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise StorageArgumentError(
                f"S3 URL {url!r} names no bucket; expected s3://bucket/prefix"
            )
        return cls(bucket, prefix, creds, read_only=read_only)
