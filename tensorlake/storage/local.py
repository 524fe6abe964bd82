"""``LocalStorage``: one file per key under a root directory.

Writes never expose half an object: ``put`` writes a hidden temp file in the
target's directory, ``fsync``s it, then ``os.replace``s it over the key (and
``fsync``s the directory, so the rename survives a power loss). ``put_if_absent``
hard-links the finished temp file to the key, which fails if the key exists,
making it atomic across processes. Temp files start with ``.tl-tmp.`` and are
never listed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tensorlake.errors import ReadOnlyError, StorageArgumentError, StorageError
from tensorlake.storage import _direct
from tensorlake.storage.base import Bytes, ObjectInfo, Storage, check_key

__all__ = ["LocalStorage"]

_TMP_PREFIX = ".tl-tmp."
_NO_LINK_ERRNOS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}
_FREE = "Free space on that disk (or move the dataset to one with room), then retry."
_ALLOW = "Give this user {access} permission there (or open the dataset with read_only=True)."
_REFUSALS = {  # errno -> (what the disk said, what to do)
    errno.ENOSPC: ("the disk is full", _FREE),
    errno.EDQUOT: ("the disk quota is used up", _FREE),
    errno.EROFS: (
        "the file system is read-only",
        "Remount it writable, or open the dataset with read_only=True to only read it.",
    ),
    errno.EACCES: ("permission denied", _ALLOW),
    errno.EPERM: ("permission denied", _ALLOW),
}


class LocalStorage(Storage):
    """Objects as files under ``root`` (made absolute, so it can be shipped to workers).

    Example::

        store = LocalStorage("/data/my-dataset")
        store.put("tensors/x/chunks/0", b"...")
    """

    def __init__(
        self, root: str | os.PathLike[str], *, read_only: bool = False, fsync: bool = True
    ) -> None:
        super().__init__(read_only=read_only)
        if "\x00" in os.fspath(root):  # no file system takes it: say so, typed
            raise StorageArgumentError(f"a local path must not contain NUL characters: {root!r}")
        self._root = Path(os.path.abspath(os.fspath(root)))
        # False: puts reach the page cache only (safe from a killed process, not from a
        # power loss) until sync(keys); for writers whose puts another process publishes
        self.fsync = fsync
        # objects of at least this many bytes are written around the page cache (see
        # _direct.py), None: none are; for bulk writers whose objects are not read soon.
        # Set by set_direct_write_min; reset to None when the file system refuses.
        self.direct_write_min: int | None = None

    @property
    def root(self) -> Path:
        """The absolute directory holding the objects."""
        return self._root

    @property
    def url(self) -> str:
        return str(self._root)

    def _path(self, key: str) -> Path:
        if any(part.startswith(_TMP_PREFIX) for part in key.split("/")):
            raise ValueError(f"storage key {key!r} uses the reserved prefix {_TMP_PREFIX!r}")
        return self._root.joinpath(*key.split("/"))

    @classmethod
    def open_url(
        cls, url: str, creds: dict[str, Any] | None = None, read_only: bool = False
    ) -> LocalStorage:
        """Open ``file:///abs/path`` (or ``file://rel/path``, relative to the working
        folder), or a plain path, taken as it is (``from_url`` passes paths here)."""
        cls._refuse_creds(url, creds)
        if url[:7].lower() != "file://":
            return cls(url, read_only=read_only)
        parts = urllib.parse.urlsplit(url)
        host = "" if parts.netloc in ("", "localhost") else parts.netloc
        path = urllib.parse.unquote(host + parts.path)
        if not path:
            raise StorageArgumentError(f"file URL {url!r} names no path")
        return cls(path, read_only=read_only)

    def _set_direct_write_min(self, min_bytes: int | None) -> None:
        self.direct_write_min = min_bytes

    def _error(self, op: str, key: str, err: OSError) -> StorageError:
        """``err`` as a ``StorageError``; a refusal of the disk (full, read-only, not
        permitted) says so and what to do, without the name of the temp file it hit."""
        refusal = _REFUSALS.get(err.errno or 0)
        if refusal is None:
            return StorageError(f"cannot {op} {key!r} in {self.url}: {err}", key=key)
        what, advice = refusal
        advice = advice.format(access="read" if op in ("read", "stat") else "write")
        message = (
            f"cannot {op} {key!r} in {self.url}: {what} ({err.strerror}). {advice} "
            "Nothing half-written was left: the dataset keeps what it last committed "
            "(and flushed)."
        )
        if err.errno == errno.EROFS:
            return ReadOnlyError(message, key=key)
        return StorageError(message, key=key)

    # --- reads ----------------------------------------------------------------

    def _get(self, key: str) -> bytes:
        try:
            with open(self._path(key), "rb") as f:
                return f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as err:
            raise self._missing(key) from err
        except OSError as err:
            raise self._error("read", key, err) from err

    def _get_versioned(self, key: str) -> tuple[bytes, ObjectInfo]:
        try:
            with open(self._path(key), "rb") as f:
                st = os.fstat(f.fileno())
                data = f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as err:
            raise self._missing(key) from err
        except OSError as err:
            raise self._error("read", key, err) from err
        version = f"{st.st_mtime_ns}-{st.st_ino}-{st.st_size}"
        return data, ObjectInfo(size=len(data), version=version)

    def _get_range(self, key: str, start: int, end: int) -> bytes:
        try:
            with open(self._path(key), "rb") as f:
                f.seek(start)
                return f.read(end - start)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as err:
            raise self._missing(key) from err
        except OSError as err:
            raise self._error("read", key, err) from err

    def _stat(self, key: str) -> os.stat_result | None:
        try:
            st = os.stat(self._path(key))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as err:
            raise self._error("stat", key, err) from err
        return st if stat.S_ISREG(st.st_mode) else None

    def _exists(self, key: str) -> bool:
        return self._stat(key) is not None

    def _info(self, key: str) -> ObjectInfo:
        st = self._stat(key)
        if st is None:
            raise self._missing(key)
        # mtime alone can repeat within the clock's granularity; a rewrite is a new inode.
        return ObjectInfo(size=st.st_size, version=f"{st.st_mtime_ns}-{st.st_ino}-{st.st_size}")

    def _list(self, prefix: str) -> Iterator[str]:
        head, _, _ = prefix.rpartition("/")
        start = self._root.joinpath(*head.split("/")) if head else self._root
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(_TMP_PREFIX)]
            rel = os.path.relpath(dirpath, self._root)
            base = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            for name in filenames:
                key = base + name
                if not name.startswith(_TMP_PREFIX) and key.startswith(prefix):
                    keys.append(key)
        return iter(sorted(keys))

    def remove_temp_files(self) -> int:
        """Delete the temp files that writers killed mid-write left behind; how many.
        Only for a caller that knows nobody writes here now (it holds the writer lock)."""
        removed = 0
        for dirpath, _, filenames in os.walk(self._root):
            for name in filenames:
                if name.startswith(_TMP_PREFIX):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(dirpath, name))
                        removed += 1
        return removed

    # --- writes ---------------------------------------------------------------

    def _write_temp(
        self, key: str, path: Path, parts: Sequence[Bytes], durable: bool = True
    ) -> Path:
        """Write the concatenated ``parts`` to a fresh (``durable``: fsynced) temp file next
        to ``path``; return its path."""
        # Truncated so that the temp name fits the 255-byte limit whenever the key's does.
        tmp = path.with_name(f"{_TMP_PREFIX}{path.name[:32]}.{uuid.uuid4().hex}")
        minimum = self.direct_write_min
        direct = _direct.AVAILABLE and minimum is not None and sum(map(len, parts)) >= minimum
        fd = self._create(key, path, tmp, _direct.FLAGS if direct else 0)
        try:
            if direct:
                try:
                    _direct.write_direct(fd, parts)
                except OSError:  # a file system without aligned direct writes
                    self.direct_write_min, direct = None, False
                    _direct.make_buffered(fd)
            if not direct:
                _write_all(fd, parts)
            if durable:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            _unlink(tmp)
            raise
        os.close(fd)
        return tmp

    def _create(self, key: str, path: Path, tmp: Path, flags: int) -> int:
        """Open the new file ``tmp`` for writing, making the folders it needs."""
        attempts = 0
        while True:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | flags, 0o644)
            except FileNotFoundError:  # a concurrent delete pruned the empty parent
                attempts += 1
                if attempts == 5:
                    raise
            except (FileExistsError, NotADirectoryError) as err:
                raise StorageError(
                    f"cannot write {key!r} in {self.url}: a parent of it is an object, "
                    "not a folder",
                    key=key,
                ) from err
            except OSError as err:
                if not flags or err.errno != errno.EINVAL:
                    raise
                self.direct_write_min, flags = None, 0  # e.g. tmpfs refuses O_DIRECT

    def _put(self, key: str, data: Bytes) -> None:
        self._put_parts(key, [data])

    def _put_parts(self, key: str, parts: Sequence[Bytes]) -> None:
        path = self._path(key)
        try:
            tmp = self._write_temp(key, path, parts, self.fsync)
            try:
                os.replace(tmp, path)
            except BaseException:
                _unlink(tmp)
                raise
            if self.fsync:
                _fsync_dir(path.parent)
        except OSError as err:
            raise self._error("write", key, err) from err

    def sync(self, keys: Iterable[str]) -> None:
        paths = [(key, self._path(check_key(key))) for key in keys]
        if len(paths) > 1:  # concurrent fsyncs share journal commits: far faster in bulk
            with ThreadPoolExecutor(min(16, len(paths))) as pool:
                list(pool.map(lambda kp: self._sync_file(*kp), paths))
        else:
            for key, path in paths:
                self._sync_file(key, path)
        for folder in {path.parent for _, path in paths}:
            _fsync_dir(folder)

    def _sync_file(self, key: str, path: Path) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError as err:
            raise self._missing(key) from err
        except OSError as err:
            raise self._error("sync", key, err) from err
        try:
            os.fsync(fd)
        except OSError as err:
            raise self._error("sync", key, err) from err
        finally:
            os.close(fd)

    def _put_if_absent(self, key: str, data: Bytes) -> bool:
        path = self._path(key)
        try:
            tmp = self._write_temp(key, path, [data])
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            except OSError as err:
                if err.errno not in _NO_LINK_ERRNOS:
                    raise
                return _create_exclusive(path, data)  # no hard links on this filesystem
            finally:
                _unlink(tmp)
            _fsync_dir(path.parent)
            return True
        except OSError as err:
            raise self._error("write", key, err) from err

    def _delete(self, key: str) -> None:
        path = self._path(key)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return
        except OSError as err:
            raise self._error("delete", key, err) from err
        self._prune(path.parent)

    def _prune(self, directory: Path) -> None:
        """Remove now-empty folders up to the root, so deleted keys leave nothing behind."""
        while directory != self._root and self._root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


_IOV_MAX = 1024  # buffers one writev may take (POSIX's minimum, Linux's value)


def _write_all(fd: int, parts: Sequence[Bytes]) -> None:
    """Write every part, in order, with as few system calls as the kernel allows."""
    views = [memoryview(p).cast("B") for p in parts if len(p)]
    if not hasattr(os, "writev"):  # Windows
        for view in views:
            while view:
                view = view[os.write(fd, view) :]
        return
    first = 0
    while first < len(views):
        written = os.writev(fd, views[first : first + _IOV_MAX])
        while written and first < len(views):
            if written >= len(views[first]):
                written -= len(views[first])
                first += 1
            else:
                views[first] = views[first][written:]
                written = 0


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. a platform that cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_exclusive(path: Path, data: Bytes) -> bool:
    """Fallback ``put_if_absent`` for filesystems without hard links (not atomic for readers)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:  # a full disk: no half object under the key
        _unlink(path)
        raise
    return True
