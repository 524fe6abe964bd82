"""``ingest_archive``: a ``.zip``, ``.tar`` or ``.tar.gz`` (a URL, an ``s3://`` object or a
local file) downloaded, extracted safely and ingested by its layout, in one call.

Steps, each with its own failure: the archive is fetched into a temporary folder
(HTTP downloads are streamed with a byte progress bar and resumed with a ``Range``
request after a dropped connection); its kind is told by its first bytes, not its name;
it is extracted into that folder, refusing what could write outside it (absolute paths,
``..``, links leading out, device files and other special files) and decompression
bombs (more than ``max_size`` bytes or ``max_ratio`` times the archive's size: the
declared sizes are checked first, and the bytes counted while writing); then the
extracted tree is ingested as a classification folder, a COCO layout, or any files
(``ingest_files``). The temporary folder is removed after success and after failure.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import http.client
import os
import posixpath
import random
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO, Any

from tensorlake import config
from tensorlake.api.dataset import Dataset
from tensorlake.compute.progress import ProgressBar, progress_bar
from tensorlake.errors import IngestError, StorageError
from tensorlake.ingestion.classification import ingest_classification
from tensorlake.ingestion.coco import ingest_coco
from tensorlake.ingestion.files import FileSource
from tensorlake.ingestion.generic import ingest_files
from tensorlake.ingestion.layout import LAYOUTS, choose_layout
from tensorlake.storage import from_url

__all__ = ["DEFAULT_MAX_RATIO", "DEFAULT_MAX_SIZE", "LAYOUTS", "ingest_archive"]

DEFAULT_MAX_SIZE = 50 * 2**30
"""Bytes an archive may extract to (50 GiB), unless ``max_size`` says otherwise."""

DEFAULT_MAX_RATIO = 200.0
"""Extracted bytes per archive byte refused beyond (a zip bomb reaches thousands)."""


RETRIES = 5  # reconnections of one download (each resumes where the last stopped)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})  # answers worth reconnecting for
BACKOFF = 0.2  # at most this many seconds before the first reconnection, doubled each time
BLOCK = 1 << 20  # bytes read and written at a time
S3_PART = 64 << 20  # bytes of an s3:// archive fetched per request
IGNORED_TOPS = ("__MACOSX",)  # zip tools' side folders, not taken as a second top folder


def ingest_archive(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str] | Dataset,
    src_creds: dict[str, Any] | None = None,
    dest_creds: dict[str, Any] | None = None,
    link: bool = False,
    num_workers: int = 0,
    checkpoint_interval: int = 0,
    resume: bool = False,
    ignore_errors: bool = False,
    progressbar: bool = True,
    summary: bool = True,
    overwrite: bool = False,
    max_size: int = DEFAULT_MAX_SIZE,
    max_ratio: float = DEFAULT_MAX_RATIO,
    layout: str = "auto",
    tmp_dir: str | os.PathLike[str] | None = None,
) -> Dataset:
    """Ingest an archive (``.zip``, ``.tar``, ``.tar.gz``/``.tgz``, told by its content)
    at an ``http(s)://`` URL, an ``s3://`` object (``src_creds``) or a local path.

    The extracted tree (a single top folder wrapping everything is descended into) is
    ingested by its ``layout``: ``"classification"`` (``<class>/<file>`` or
    ``<split>/<class>/<file>`` images: ``ingest_classification``), ``"coco"`` (a COCO
    annotations JSON and its images folder: ``ingest_coco``), ``"files"`` (anything:
    ``ingest_files``, every file's path and bytes); ``"auto"`` (default) picks the first
    that fits, in that order. ``max_size`` (bytes) and ``max_ratio`` (extracted per
    archive byte) refuse decompression bombs. ``tmp_dir``: where the download and the
    extracted files go (default ``tempfile.gettempdir()``); removed in any case.
    ``link=True`` is refused: once extracted, the files are gone after the ingest.
    Workers, checkpoints, ``resume``, ``ignore_errors`` are those of every ingest.

    Example::

        ds = tl.ingest_archive("https://example.com/mnist.tar.gz", "./mnist")
    """
    if link:
        raise IngestError(
            "link=True cannot be used with an archive: its files exist only in a temporary "
            "folder during the ingest, so links would point at nothing. Extract the "
            "archive somewhere lasting and ingest that folder with link=True instead."
        )
    if layout not in LAYOUTS:  # before anything is fetched
        raise IngestError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}.")
    text = os.fspath(src)
    work, held = _workspace(text, dest, tmp_dir)
    try:
        try:
            path = _fetch(text, src_creds, work, progressbar)
        except OSError as err:  # writing the download: a full disk, said as such
            _check_space(err, text, os.path.join(work, "x"))
            raise
        target = os.path.join(work, "x")
        os.mkdir(target)
        _extract(path, text, target, max_size, max_ratio)
        if path.startswith(work):
            os.remove(path)  # the download is not needed any more: its disk space is
        root = _top(target)
        chosen, coco = choose_layout(FileSource(root), layout)
        common: dict[str, Any] = dict(
            dest_creds=dest_creds,
            num_workers=num_workers,
            checkpoint_interval=checkpoint_interval,
            resume=resume,
            ignore_errors=ignore_errors,
            progressbar=progressbar,
            summary=summary,
            overwrite=overwrite,
        )
        if chosen == "classification":
            return ingest_classification(root, dest, source_name=text, **common)
        if chosen == "coco":
            assert coco is not None
            inside = os.path.relpath(coco.images, root).replace(os.sep, "/")
            name = text if inside == "." else f"{text}/{inside}"
            return ingest_coco(coco.images, coco.annotations, dest, source_name=name, **common)
        return ingest_files(root, dest, source_name=text, **common)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        os.close(held)


def _workspace(
    src: str, dest: str | os.PathLike[str] | Dataset, tmp_dir: str | os.PathLike[str] | None
) -> tuple[str, int]:
    """The temporary folder of this archive and destination, and the descriptor holding
    its lock. Its name is the same on every run, so the extracted files have the same
    paths: an ingest that records where each row came from (classification) knows, on
    ``resume`` or a second run, which files it holds already. What a killed run left
    there is removed; a live run ingesting the same archive into the same ``dest``
    holds the lock (``IngestError``)."""
    where = dest.path if isinstance(dest, Dataset) else os.fspath(dest)
    if "://" not in where:
        where = os.path.abspath(where)
    digest = hashlib.sha256(f"{src}\0{where}".encode()).hexdigest()[:16]
    work = os.path.join(os.fspath(tmp_dir or tempfile.gettempdir()), f"tl-archive-{digest}")
    os.makedirs(work, exist_ok=True)
    held = os.open(work, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(held)
        raise IngestError(
            f"Another ingest of {src} into {where} is running (its files are in {work})."
        ) from None
    for name in os.listdir(work):  # left by a run that was killed
        shutil.rmtree(os.path.join(work, name), ignore_errors=True)
        if os.path.exists(os.path.join(work, name)):
            os.remove(os.path.join(work, name))
    return work, held


# -- fetching --------------------------------------------------------------------------


def _fetch(src: str, creds: dict[str, Any] | None, work: str, progressbar: bool) -> str:
    """A local file holding the archive: ``src`` itself, or a download into ``work``."""
    if src.startswith(("http://", "https://")):
        path = os.path.join(work, "archive")
        _download(src, path, progressbar)
        return path
    if src.startswith("s3://"):
        parent, _, name = src.rstrip("/").rpartition("/")
        if not name or parent == "s3:/":
            raise IngestError(f"{src} names no object: give s3://bucket/path/archive.zip.")
        path = os.path.join(work, "archive")
        _download_object(src, parent, name, creds, path, progressbar)
        return path
    if creds:
        raise IngestError(f"src_creds are for s3:// archives, not for {src!r}.")
    path = os.path.abspath(os.path.expanduser(src.removeprefix("file://")))
    if not os.path.isfile(path):
        what = "is a folder, not an archive" if os.path.isdir(path) else "does not exist"
        raise IngestError(f"The archive {path} {what}.")
    return path


def _download(url: str, path: str, progressbar: bool) -> None:
    """``url`` streamed into ``path``; a dropped connection (or a 429/5xx answer) is
    retried, resuming with ``Range`` (up to ``RETRIES`` times, jittered backoff; each
    silence longer than ``TENSORLAKE_HTTP_TIMEOUT`` drops the connection);
    ``IngestError`` when it cannot be completed."""
    done, total, tries = 0, None, 0
    bar: ProgressBar | None = None
    with open(path, "wb") as f:
        try:
            while True:
                request = urllib.request.Request(url)
                if done:
                    request.add_header("Range", f"bytes={done}-")
                try:
                    timeout = config.http_timeout()
                    with urllib.request.urlopen(request, timeout=timeout) as response:
                        if done and response.status != 206:  # the server ignored Range
                            f.seek(0)
                            f.truncate()
                            done = 0
                        if total is None:
                            length = response.headers.get("Content-Length")
                            total = int(length) if length is not None else None
                            bar = _byte_bar(progressbar, total, url)
                        assert bar is not None
                        while chunk := response.read(BLOCK):
                            _write(f, chunk)
                            done += len(chunk)
                            bar.update(len(chunk))
                    if total is None or done >= total:
                        return
                    raise http.client.IncompleteRead(b"", total - done)
                except urllib.error.HTTPError as err:
                    err.close()
                    if err.code not in RETRY_STATUSES or tries >= RETRIES:
                        raise IngestError(
                            f"Cannot download {url}: HTTP {err.code} {err.reason}"
                            + (f" ({tries + 1} attempts)." if tries else ".")
                        ) from err
                    tries += 1
                    _sleep(tries)
                except _WriteFailed as err:  # the local disk, not the connection: no retry
                    raise err.__cause__ from None  # type: ignore[misc]
                except (OSError, http.client.HTTPException) as err:
                    tries += 1
                    if tries > RETRIES:
                        raise IngestError(
                            f"Cannot download {url}: the connection failed {tries} times "
                            f"({err}); {done} of {total or '?'} bytes arrived."
                        ) from err
                    _sleep(tries)
        finally:
            if bar is not None:
                bar.close()


class _WriteFailed(Exception):
    """A write of the download failed (its ``__cause__``: a full disk ...)."""


def _write(f: IO[bytes], data: bytes) -> None:
    try:
        f.write(data)
    except OSError as err:
        raise _WriteFailed from err


def _sleep(tries: int) -> None:
    """Jittered exponential backoff before reconnection number ``tries``."""
    time.sleep(random.uniform(0, min(BACKOFF * 2 ** (tries - 1), 5.0)))


def _download_object(
    src: str, parent: str, name: str, creds: dict[str, Any] | None, path: str, progressbar: bool
) -> None:
    """An ``s3://`` object written into ``path`` a range of ``S3_PART`` bytes at a time
    (never whole in memory; the storage retries each range)."""
    try:
        storage = from_url(parent, creds=creds, read_only=True)
        size = storage.info(name).size
        bar = _byte_bar(progressbar, size, src)
        try:
            with open(path, "wb") as f:
                for start in range(0, size, S3_PART):
                    data = storage.get_range(name, start, min(start + S3_PART, size))
                    f.write(data)
                    bar.update(len(data))
        finally:
            bar.close()
    except (StorageError, KeyError, ValueError) as err:
        raise IngestError(f"Cannot read the archive {src}: {err}") from err


def _byte_bar(enabled: bool, total: int | None, url: str) -> ProgressBar:
    name = "download " + url.rsplit("/", 1)[-1][:40]
    return progress_bar(enabled, total, 0, name, unit="B", unit_scale=True)


# -- extracting ------------------------------------------------------------------------


def _kind(path: str) -> str:
    """``"zip"`` or ``"tar"`` (plain or compressed), from the file's first bytes."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "zip"
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        return "tar"  # compressed: a tar inside is checked when it is read
    if head[257:262] == b"ustar" or (len(head) == 512 and _tar_checksum_ok(head)):
        return "tar"
    return "none"


def _tar_checksum_ok(header: bytes) -> bool:
    """An old (v7) tar header: no magic, but its checksum field adds up."""
    try:
        stored = int(header[148:156].split(b"\0", 1)[0].strip() or b"-1", 8)
    except ValueError:
        return False
    return stored == sum(header[:148]) + 8 * 32 + sum(header[156:])


def _extract(path: str, src: str, target: str, max_size: int, max_ratio: float) -> None:
    kind = _kind(path)
    if kind == "none":
        raise IngestError(
            f"{src} is not a zip or tar archive (plain, gzip, bzip2 or xz): its first "
            "bytes are of none of them."
        )
    limits = _Limits(src, max(os.path.getsize(path), 1), max_size, max_ratio)
    if kind == "zip":
        _extract_zip(path, src, target, limits)
    else:
        _extract_tar(path, src, target, limits)


class _Limits:
    """The bytes an extraction may write, counted as they are written."""

    def __init__(self, src: str, archive: int, max_size: int, max_ratio: float) -> None:
        self.src, self.archive = src, archive
        self.most = min(max_size, int(archive * max_ratio))
        self.max_size, self.max_ratio = max_size, max_ratio
        self.written = 0

    def check(self, size: int, what: str) -> None:
        """Refuse when ``size`` bytes (declared or written so far) pass a limit."""
        if size > self.most:
            raise IngestError(
                f"{self.src} looks like a decompression bomb: {what} {size} bytes, over "
                f"max_size={self.max_size} or max_ratio={self.max_ratio} times its "
                f"{self.archive} bytes. Raise max_size / max_ratio if the archive is trusted."
            )

    def add(self, n: int) -> None:
        self.written += n
        self.check(self.written, "it extracts to more than")


def _safe_path(target: str, name: str, src: str) -> str:
    """Where entry ``name`` goes under ``target``; ``IngestError`` for a name that leads
    elsewhere (absolute, a drive, ``..``)."""
    clean = name.replace("\\", "/")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if (
        clean.startswith("/")
        or (len(clean) > 1 and clean[1] == ":")
        or ".." in parts
        or "\0" in clean
    ):
        raise IngestError(
            f"{src}: the entry {name!r} would be written outside the extraction folder "
            "(an absolute path or '..'); the archive is refused."
        )
    where = os.path.join(target, *parts) if parts else target
    if os.path.commonpath([os.path.realpath(where), os.path.realpath(target)]) != (
        os.path.realpath(target)
    ):
        raise IngestError(f"{src}: the entry {name!r} leads outside the extraction folder.")
    return where


def _copy(source: IO[bytes], where: str, limits: _Limits, declared: int, name: str) -> None:
    os.makedirs(os.path.dirname(where), exist_ok=True)
    written = 0
    with open(where, "wb") as out:  # an entry given twice: the last wins, as with tar x
        while chunk := source.read(BLOCK):
            written += len(chunk)
            if written > declared:
                raise IngestError(
                    f"{limits.src}: the entry {name!r} holds more than the {declared} bytes "
                    "it declares; the archive is refused."
                )
            limits.add(len(chunk))
            out.write(chunk)


def _extract_zip(path: str, src: str, target: str, limits: _Limits) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise IngestError(f"{src} is not a readable zip archive (truncated?): {err}") from err
    with archive:
        entries = archive.infolist()
        limits.check(sum(e.file_size for e in entries), "its entries declare")
        for entry in entries:
            if entry.flag_bits & 0x1:
                raise IngestError(
                    f"{src} is password-protected (entry {entry.filename!r}): decrypt it first."
                )
            mode = stat.S_IFMT(entry.external_attr >> 16) if entry.create_system == 3 else 0
            where = _safe_path(target, entry.filename, src)
            if entry.is_dir():
                os.makedirs(where, exist_ok=True)
                continue
            if mode and not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                raise IngestError(f"{src}: the entry {entry.filename!r} is a special file.")
            try:
                with archive.open(entry) as data:
                    if stat.S_ISLNK(mode):
                        link = data.read(4096).decode("utf-8", "replace")
                        _copy_link(target, where, entry.filename, link, True, src, limits)
                    else:
                        _copy(data, where, limits, entry.file_size, entry.filename)
            except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
                _check_space(err, src, target)
                raise IngestError(
                    f"{src}: cannot extract {entry.filename!r} (truncated or corrupt): {err}"
                ) from err


def _copy_link(
    target: str, where: str, name: str, link: str, relative: bool, src: str, limits: _Limits
) -> None:
    """A link entry inside the archive becomes a copy of the file it names (no link is
    ever made on disk, so no later entry can be written through one); a link leading
    outside the folder, or to nothing extracted yet, is refused."""
    base = posixpath.dirname(name.replace("\\", "/")) if relative else ""
    joined = link if link.startswith("/") else posixpath.join(base, link)
    normal = posixpath.normpath(joined)
    if link.startswith("/") or normal == ".." or normal.startswith("../"):
        raise IngestError(
            f"{src}: the entry {name!r} is a link to {link!r}, outside the extraction "
            "folder; the archive is refused."
        )
    origin = _safe_path(target, normal, src)
    if not os.path.isfile(origin):
        raise IngestError(
            f"{src}: the entry {name!r} links to {link!r}, which is no file extracted before "
            "it; the archive is refused."
        )
    size = os.path.getsize(origin)
    with open(origin, "rb") as data:
        _copy(data, where, limits, size, name)


def _check_space(err: BaseException, src: str, target: str) -> None:
    """A full disk is said as such (not as a corrupt archive), with what to do."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        raise IngestError(
            f"No space left on the disk of {os.path.dirname(target)} to extract {src}. Free "
            "some, or pass tmp_dir= a folder on a disk with room; nothing was ingested."
        ) from err


def _extract_tar(path: str, src: str, target: str, limits: _Limits) -> None:
    try:
        archive = tarfile.open(path, mode="r|*")  # noqa: SIM115 (closed by the with below)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise IngestError(
            f"{src} is not a readable tar archive (truncated or corrupt): {err}"
        ) from err
    with archive:
        try:
            for member in _members(archive):
                where = _safe_path(target, member.name, src)
                if hasattr(tarfile, "data_filter"):
                    try:
                        tarfile.data_filter(member, target)
                    except tarfile.FilterError as err:
                        raise IngestError(
                            f"{src}: the entry {member.name!r} is refused: {err}"
                        ) from err
                if member.isdir():
                    os.makedirs(where, exist_ok=True)
                elif member.isfile():
                    limits.check(limits.written + member.size, "its entries declare at least")
                    data = archive.extractfile(member)
                    assert data is not None
                    _copy(data, where, limits, member.size, member.name)
                elif member.issym() or member.islnk():
                    # a symlink names a path from its own folder, a hard link from the root
                    _copy_link(
                        target, where, member.name, member.linkname, member.issym(), src, limits
                    )
                else:
                    raise IngestError(
                        f"{src}: the entry {member.name!r} is a device, fifo or other special "
                        "file; the archive is refused."
                    )
        except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
            _check_space(err, src, target)
            raise IngestError(f"{src} is truncated or corrupt: {err}") from err


def _members(archive: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The members as the stream gives them (nothing kept: a huge archive's list is not
    held in memory)."""
    while (member := archive.next()) is not None:
        yield member
        archive.members = []  # type: ignore[attr-defined]


# -- layouts ---------------------------------------------------------------------------


def _top(target: str) -> str:
    """The folder to ingest: single top folders wrapping everything are descended into."""
    root = target
    while True:
        entries = [e for e in os.listdir(root) if e not in IGNORED_TOPS]
        if len(entries) != 1 or not os.path.isdir(os.path.join(root, entries[0])):
            return root
        if len(entries) != len(os.listdir(root)):  # __MACOSX beside: it is dropped
            shutil.rmtree(os.path.join(root, IGNORED_TOPS[0]), ignore_errors=True)
        root = os.path.join(root, entries[0])
