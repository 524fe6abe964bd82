"""``tl.upload``: every file of a local folder copied to ``s3://bucket/prefix``, resumably.

The DIGITS ``upload_s3_data.py`` step: each file goes to ``prefix/<its path relative
to the folder, with />``, and the bucket is created when it does not exist. Files
travel through boto3's managed transfer (s3transfer): one ``PutObject`` for a file
under ``multipart_threshold`` bytes, parts of ``multipart_chunksize`` (uploaded
concurrently) for a larger one, ``num_workers`` requests in flight in all. The S3
client is the one ``S3Storage`` makes from the same ``creds`` as ``tl.load``.

**Resuming.** An object already at a file's key with the same size and ETag is not
sent again, so running an interrupted upload again sends only what is missing, and a
file whose object differs is sent again. The ETag is the checksum because S3, moto
and the S3-compatible servers return it in every listing (1,000 objects a request,
no request per file) and it can be computed locally: for an object stored with one
``PutObject`` it is the MD5 of its bytes; for a multipart upload, the MD5 of the
concatenated binary MD5s of its parts, then ``-<number of parts>``. The local value
is computed with the part size this upload would use (s3transfer's
``ChunksizeAdjuster``, as the transfer itself does), so an object this function
stored is recognised, and so is one stored by ``aws s3 cp`` / ``aws s3 sync`` with
their defaults (8 MiB parts from 8 MiB, the defaults here too). An object whose ETag
is no MD5 (SSE-KMS or SSE-C encryption) or was uploaded in other parts never
matches: it is sent again, which is safe but not free. Local MD5s are computed only
for files whose object has the same size.

**Which files.** Regular files, and symbolic links to files or folders, followed (the
target's bytes under the link's name; a link back into a folder being walked is
skipped); ``follow_symlinks=False`` skips every link. Hidden files and folders (names
starting with ``.`` below ``local_dir``) are skipped unless ``include_hidden=True``.
Other special files (FIFOs, sockets, devices) are skipped. A broken link, an
unreadable folder or a name that is not UTF-8 is an ``IngestError`` before anything
is sent.

boto3 is imported on the first upload, not with this module, so ``import
tensorlake`` stays quick (as ``tensorlake.storage`` defers ``S3Storage``).
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tensorlake import storage
from tensorlake.compute.progress import SharedBar, human_bytes, progress_bar
from tensorlake.errors import IngestError, StorageError, TensorlakeError

__all__ = [
    "DEFAULT_WORKERS",
    "MULTIPART_CHUNKSIZE",
    "MULTIPART_THRESHOLD",
    "UploadReport",
    "upload",
]

DEFAULT_WORKERS = 8
"""Requests in flight when ``num_workers`` is None."""

MULTIPART_THRESHOLD = 8 * 1024 * 1024
"""Files this large or larger are uploaded in parts (the AWS CLI's default too)."""

MULTIPART_CHUNKSIZE = 8 * 1024 * 1024
"""The size of those parts (raised, as s3transfer does, to stay within 10,000 parts)."""

_HASH_BLOCK = 1024 * 1024
_AUTH_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "403",
    "Forbidden",
}


@dataclass(frozen=True, slots=True)
class UploadReport:
    """What one ``upload`` did."""

    url: str  # s3://bucket/prefix
    files_uploaded: int
    files_skipped: int  # already there: same size and ETag
    bytes_sent: int  # the sizes of the files uploaded
    bytes_skipped: int
    seconds: float

    @property
    def files(self) -> int:
        """Every file found under the folder."""
        return self.files_uploaded + self.files_skipped

    @property
    def bytes_per_second(self) -> float:
        return self.bytes_sent / self.seconds if self.seconds > 0 else 0.0

    def __repr__(self) -> str:
        return (
            f"UploadReport({self.url}: {self.files_uploaded} files uploaded "
            f"({human_bytes(self.bytes_sent)} in {self.seconds:.2f} s, "
            f"{human_bytes(self.bytes_per_second)}/s), {self.files_skipped} skipped as already there "
            f"({human_bytes(self.bytes_skipped)}))"
        )


@dataclass(frozen=True, slots=True)
class _File:
    path: str  # what to open
    key: str  # the object's key in the bucket
    size: int


def upload(
    local_dir: str | os.PathLike[str],
    url: str,
    creds: dict[str, Any] | None = None,
    num_workers: int | None = None,
    progressbar: bool = True,
    *,
    include_hidden: bool = False,
    follow_symlinks: bool = True,
    multipart_threshold: int = MULTIPART_THRESHOLD,
    multipart_chunksize: int = MULTIPART_CHUNKSIZE,
) -> UploadReport:
    """Upload every file under ``local_dir`` to ``url`` (``s3://bucket[/prefix]``).

    Each file goes to ``prefix/<relative path>``; the bucket is created when missing.
    Files already there with the same size and ETag are skipped (see the module's
    docstring), so running it again after an interruption sends only what is
    missing. ``creds`` is the dict ``tl.load`` takes for S3 (``aws_access_key_id``,
    ``aws_secret_access_key``, ``endpoint_url``, ``profile_name``, ``aws_region`` ...).
    ``num_workers`` requests run at once (default ``DEFAULT_WORKERS``), under one
    progress bar in bytes.

    Raises ``IngestError`` for a bad folder, target or argument and for files that
    cannot be read, ``StorageError`` when S3 refuses or cannot be reached; files sent
    before a failure stay, to be skipped by the next run.

    Example::

        report = tl.upload("~/mnist", "s3://digits/mnist",
                           creds={"endpoint_url": "http://s3.local:80",
                                  "aws_access_key_id": "...", "aws_secret_access_key": "..."})
        report.files_uploaded, report.files_skipped, report.bytes_sent
    """
    started = time.perf_counter()
    bucket, prefix = _parse_target(url)
    workers = _check_count("num_workers", DEFAULT_WORKERS if num_workers is None else num_workers)
    _check_count("multipart_threshold", multipart_threshold)
    _check_count("multipart_chunksize", multipart_chunksize)
    files = _scan(Path(os.path.expanduser(local_dir)), prefix, include_hidden, follow_symlinks)
    target = _Target(bucket, prefix, creds)
    try:
        target.ensure_bucket()
        remote = target.listing()
        parts = (multipart_threshold, multipart_chunksize)
        to_send, skipped = _plan(files, remote, parts, workers)
        target.send(to_send, len(skipped), workers, parts, progressbar)
    finally:
        target.close()
    return UploadReport(
        url=target.url,
        files_uploaded=len(to_send),
        files_skipped=len(skipped),
        bytes_sent=sum(f.size for f in to_send),
        bytes_skipped=sum(f.size for f in skipped),
        seconds=time.perf_counter() - started,
    )


# --- arguments and the local folder ---------------------------------------------------


def _parse_target(url: object) -> tuple[str, str]:
    if not isinstance(url, str) or not url.lower().startswith("s3://"):
        raise IngestError(
            f"the upload target must be an S3 URL, s3://bucket or s3://bucket/prefix; got {url!r}"
        )
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise IngestError(f"the upload target {url!r} names no bucket; expected s3://bucket/prefix")
    prefix = prefix.strip("/")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise IngestError(
            f"the prefix of {url!r} has an empty, '.' or '..' component; "
            "expected '/'-separated names such as s3://bucket/datasets/mnist"
        )
    return bucket, prefix


def _check_count(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise IngestError(f"{name} must be a positive integer, got {value!r}")
    return value


def _scan(root: Path, prefix: str, include_hidden: bool, follow_symlinks: bool) -> list[_File]:
    """The files under ``root``, sorted by key, checked before anything is sent."""
    if not root.exists():
        raise IngestError(
            f"cannot upload {str(root)!r}: it does not exist; expected a folder of files"
        )
    if not root.is_dir():
        raise IngestError(
            f"cannot upload {str(root)!r}: it is a file, not a folder; pass the folder "
            "that holds it"
        )
    base = f"{prefix}/" if prefix else ""
    found: list[_File] = []
    hidden = 0
    top = root.stat()
    stack: list[tuple[str, str, frozenset[tuple[int, int]]]] = [
        (str(root), "", frozenset({(top.st_dev, top.st_ino)}))
    ]
    while stack:
        folder, rel, ancestors = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as err:
            raise IngestError(
                f"cannot read the folder {folder!r}: {err.strerror}; fix its permissions "
                "or move it out of the folder to upload"
            ) from err
        for entry in entries:
            name = rel + entry.name
            if entry.name.startswith(".") and not include_hidden:
                hidden += 1
                continue
            if entry.is_symlink() and not follow_symlinks:
                continue
            try:
                info = entry.stat(follow_symlinks=True)
            except OSError as err:
                raise IngestError(
                    f"cannot upload {entry.path!r}: {err.strerror} (a broken symbolic link?); "
                    "remove it or make it point at a file"
                ) from err
            if stat.S_ISDIR(info.st_mode):
                ident = (info.st_dev, info.st_ino)
                if ident not in ancestors:  # else a link back up: a cycle
                    stack.append((entry.path, name + "/", ancestors | {ident}))
            elif stat.S_ISREG(info.st_mode):
                _check_utf8(entry.path, name)
                found.append(_File(entry.path, base + name, info.st_size))
    if not found:
        why = (
            f" ({hidden} hidden, skipped: pass include_hidden=True to upload them)"
            if hidden
            else ""
        )
        raise IngestError(f"there are no files to upload under {str(root)!r}{why}")
    found.sort(key=lambda f: f.key)
    return found


def _check_utf8(path: str, name: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as err:
        raise IngestError(
            f"cannot upload {path!r}: its name is not valid UTF-8, which S3 keys must be; rename it"
        ) from err


# --- what to send ---------------------------------------------------------------------


def _plan(
    files: list[_File],
    remote: dict[str, tuple[int, str]],
    parts: tuple[int, int],
    workers: int,
) -> tuple[list[_File], list[_File]]:
    """``(to_send, skipped)``: a file is skipped when its object has its size and ETag."""
    candidates = [f for f in files if f.key in remote and remote[f.key][0] == f.size]
    if not candidates:
        return files, []
    with ThreadPoolExecutor(max_workers=workers) as pool:  # hashlib releases the GIL
        etags = dict(zip(candidates, pool.map(lambda f: _local_etag(f, parts), candidates)))
    skipped = [f for f in candidates if etags[f] == remote[f.key][1]]
    skip = {f.key for f in skipped}
    return [f for f in files if f.key not in skip], skipped


def _local_etag(file: _File, parts: tuple[int, int]) -> str | None:
    """The ETag S3 gives ``file`` once uploaded with these part settings; None when it
    cannot be read (it is not skipped then, and its upload says why)."""
    from s3transfer.utils import ChunksizeAdjuster  # boto3's, deferred: see the docstring

    threshold, chunksize = parts
    try:
        with open(file.path, "rb") as f:
            if file.size < threshold:
                return _md5(f, None)[0].hexdigest()
            part = ChunksizeAdjuster().adjust_chunksize(chunksize, file.size)
            digests = []
            while True:
                h, n = _md5(f, part)
                if n:
                    digests.append(h.digest())
                if n < part:
                    break
    except OSError:
        return None
    whole = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
    return f"{whole}-{len(digests)}"


def _md5(f: Any, limit: int | None) -> tuple[Any, int]:
    """The MD5 of the next ``limit`` bytes of ``f`` (all that is left: None), and how many
    there were."""
    h = hashlib.md5(usedforsecurity=False)
    n = 0
    while limit is None or n < limit:
        block = f.read(_HASH_BLOCK if limit is None else min(_HASH_BLOCK, limit - n))
        if not block:
            break
        h.update(block)
        n += len(block)
    return h, n


# --- S3 -------------------------------------------------------------------------------


class _Target:
    """The bucket and prefix uploaded to, through ``S3Storage``'s clients."""

    def __init__(self, bucket: str, prefix: str, creds: dict[str, Any] | None) -> None:
        creds = dict(creds or {})
        endpoint = creds.get("endpoint_url")
        if endpoint is not None and not (
            isinstance(endpoint, str) and endpoint.lower().startswith(("http://", "https://"))
        ):
            raise IngestError(
                f"endpoint_url must be an http:// or https:// URL such as "
                f"http://s3.example.com:80, got {endpoint!r}"
            )
        self.bucket, self.prefix = bucket, prefix
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self.endpoint = endpoint or "AWS S3"
        try:
            # The bucket check fails fast (an unreachable endpoint would otherwise be
            # retried for ~80 s) yet rides out a burst of throttling or 5xx answers;
            # everything after it retries as S3Storage does.
            self._probe = storage.S3Storage(
                bucket, prefix, creds, max_attempts=4, connect_timeout=3
            )
            self._store = storage.S3Storage(bucket, prefix, creds)
        except ValueError as err:
            raise IngestError(f"cannot upload to {self.url}: {err}") from err

    def close(self) -> None:
        self._probe.close()
        self._store.close()

    def _client(self, store: Any) -> Any:
        # the client S3Storage makes (creds, path-style addressing for endpoints, retries,
        # timeouts, the shared session)
        try:
            return store.client
        except ValueError as err:  # botocore's "Invalid endpoint"
            raise IngestError(f"cannot upload to {self.url}: {err}") from err
        except Exception as err:
            raise self.error("connect", err) from err

    def ensure_bucket(self) -> None:
        import botocore.exceptions  # boto3's, deferred: see the module's docstring

        client = self._client(self._probe)
        try:
            client.head_bucket(Bucket=self.bucket)
            return
        except botocore.exceptions.ClientError as err:
            if _code(err) not in ("404", "NoSuchBucket", "NotFound"):
                raise self.error(f"check the bucket {self.bucket!r}", err) from err
        except Exception as err:
            raise self.error(f"check the bucket {self.bucket!r}", err) from err
        client = self._client(self._store)
        region = client.meta.region_name
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            client.create_bucket(**kwargs)
        except botocore.exceptions.ClientError as err:
            if _code(err) != "BucketAlreadyOwnedByYou":  # made meanwhile by another upload
                raise self.error(f"create the bucket {self.bucket!r}", err) from err
        except Exception as err:
            raise self.error(f"create the bucket {self.bucket!r}", err) from err

    def listing(self) -> dict[str, tuple[int, str]]:
        """key -> (size, ETag without quotes) of the objects under the prefix."""
        client = self._client(self._store)
        found: dict[str, tuple[int, str]] = {}
        try:
            paginator = client.get_paginator("list_objects_v2")
            pages = paginator.paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else ""
            )
            for page in pages:
                for obj in page.get("Contents", ()):
                    found[obj["Key"]] = (int(obj["Size"]), str(obj.get("ETag", "")).strip('"'))
        except Exception as err:
            raise self.error(f"list {self.url}", err) from err
        return found

    def send(
        self,
        files: list[_File],
        skipped: int,
        workers: int,
        parts: tuple[int, int],
        progressbar: bool,
    ) -> None:
        """Upload ``files``; raise after the others are done if any failed, and at once
        (cancelling the rest) on the first failure of S3 itself."""
        if not files:
            return
        from boto3.s3.transfer import TransferConfig, create_transfer_manager  # deferred

        config = TransferConfig(
            multipart_threshold=parts[0],
            multipart_chunksize=parts[1],
            max_concurrency=workers,
            use_threads=True,
            preferred_transfer_client="classic",  # the CRT client ignores the part size
        )
        client = self._client(self._store)
        shared = SharedBar()
        watch = _Watch(shared)
        bar = progress_bar(
            progressbar, sum(f.size for f in files), 0, "upload", unit="B", unit_scale=True
        )
        shared.show(bar)
        futures = []
        try:
            with create_transfer_manager(client, config) as manager:
                for file in files:
                    if watch.stopped:
                        break
                    content_type = mimetypes.guess_type(file.key)[0]
                    extra = {"ContentType": content_type} if content_type else {}
                    future = manager.upload(file.path, self.bucket, file.key, extra, [watch])
                    futures.append((file, future))
                if not watch.wait(len(futures)):
                    for _, future in futures:
                        future.cancel()  # no-op for those done
        finally:
            bar.close()
        self._check(files, futures, skipped)

    def _check(self, files: list[_File], futures: list[tuple[_File, Any]], skipped: int) -> None:
        from s3transfer.exceptions import CancelledError  # deferred: see the docstring

        failures: list[tuple[_File, TensorlakeError]] = []
        cancelled = len(files) - len(futures)
        for file, future in futures:
            try:
                future.result()
            except CancelledError:
                cancelled += 1
            except OSError as err:
                reason = f"cannot read {file.path!r}: {err.strerror or err}"
                failures.append((file, IngestError(reason)))
            except Exception as err:
                failures.append((file, self.error(f"upload {file.path!r}", err)))
        if not failures:
            return
        first_file, first = failures[0]
        sent = len(files) - len(failures) - cancelled
        stopped = f", {cancelled} not tried after the S3 error" if cancelled else ""
        message = (
            f"{len(failures)} of {len(files)} files could not be uploaded to {self.url} "
            f"({sent} were{stopped}; {skipped} were there already); the first: {first}. "
            "Fix that and run the same upload again: it sends only what is missing"
        )
        error: TensorlakeError
        if isinstance(first, StorageError):
            error = StorageError(message, key=first_file.key)
        else:
            error = IngestError(message)
        raise error from first

    def error(self, what: str, err: BaseException) -> TensorlakeError:
        """A botocore error as a ``StorageError`` saying what to do."""
        import botocore.exceptions  # deferred: see the module's docstring

        where = f"cannot {what} at {self.endpoint}"
        if isinstance(err, TensorlakeError):
            return err
        if isinstance(err, botocore.exceptions.NoCredentialsError):
            return StorageError(
                f"{where}: no AWS credentials found; pass creds={{'aws_access_key_id': ..., "
                "'aws_secret_access_key': ...}} (accesskey and secretkey in an upload config, "
                "or --profile) or configure the AWS credential chain (environment, ~/.aws)"
            )
        if isinstance(err, botocore.exceptions.ProfileNotFound):
            return StorageError(
                f"cannot upload to {self.url}: {err}; check the profile name (--profile, "
                "creds['profile_name']) and ~/.aws/config"
            )
        if isinstance(err, botocore.exceptions.ConnectionError):
            return StorageError(
                f"{where}: the endpoint cannot be reached ({err}); check the endpoint URL "
                "(creds['endpoint_url'], --endpoint-url, or endpoint in the upload config) "
                "and that the server is up"
            )
        if not isinstance(err, botocore.exceptions.ClientError):
            return StorageError(f"{where}: {err}")
        code = _code(err)
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = err.response.get("Error", {}).get("Message", "")
        if code in _AUTH_CODES:
            return StorageError(
                f"{where}: access denied ({code}); check the credentials (aws_access_key_id "
                "and aws_secret_access_key in creds, accesskey and secretkey in the upload "
                f"config, or --profile) and their permissions on the bucket {self.bucket!r}"
            )
        if code == "BucketAlreadyExists":
            return StorageError(
                f"{where}: the bucket name {self.bucket!r} is taken by another account; "
                "choose another bucket"
            )
        return StorageError(
            f"{where}: S3 error {code or status} (HTTP {status}) {message}".rstrip()
        )


def _code(err: Any) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class _Watch:
    """An s3transfer subscriber: bytes sent onto the bar, transfers done counted, and a
    stop at the first failure of S3 itself (a file that cannot be read stops nothing).

    s3transfer calls the ``on_*`` methods it finds, with the arguments
    ``s3transfer.subscribers.BaseSubscriber`` documents; not subclassing it keeps
    boto3 out of this module's imports."""

    def __init__(self, bar: SharedBar) -> None:
        self._bar = bar
        self._done = 0
        self._failed = False
        self._changed = threading.Condition()

    @property
    def stopped(self) -> bool:
        return self._failed

    def wait(self, count: int) -> bool:
        """Wait until ``count`` transfers are done (True) or one failed on S3 (False)."""
        with self._changed:
            self._changed.wait_for(lambda: self._failed or self._done >= count)
            return not self._failed

    def on_queued(self, future: Any, **kwargs: Any) -> None:
        pass

    def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
        self._bar.update(bytes_transferred)

    def on_done(self, future: Any, **kwargs: Any) -> None:
        failed = False
        try:
            future.result()
        except OSError:
            pass
        except Exception:
            failed = True
        with self._changed:
            self._done += 1
            self._failed = self._failed or failed
            self._changed.notify_all()
