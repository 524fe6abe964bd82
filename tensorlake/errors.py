"""Every exception tensorlake raises, in one tree.

::

    TensorlakeError
    ├── StorageError                 a storage provider could not do what was asked
    │   ├── KeyNotFoundError         (also KeyError) the key does not exist
    │   ├── StorageArgumentError     (also ValueError) a storage URL, creds or option not valid
    │   ├── ReadOnlyError            a write to read-only storage or a read-only dataset
    │   │   └── PastVersionError     (also VersionError) a write at a past commit
    │   ├── LockedError              another writer holds the dataset's lock
    │   └── ConditionalWritesError   the server ignores conditional writes: no safe writer lock
    ├── DatasetError                 the dataset cannot do what was asked
    │   ├── DatasetNotFoundError     (also FileNotFoundError) nothing at that path
    │   ├── DatasetExistsError       (also FileExistsError) a dataset is already there
    │   ├── TensorNotFoundError      (also KeyError) no tensor or group by that name
    │   ├── ViewNotFoundError        (also KeyError) no saved view by that id
    │   ├── DatasetArgumentError     (also ValueError) arguments a dataset method cannot act on
    │   ├── EmptyTensorError         a read of a tensor that holds only empty rows
    │   ├── NotPicklableError        (also TypeError) a dataset that cannot be pickled (mem://)
    │   ├── InvalidNameError         (also ValueError) not a valid tensor or group name
    │   ├── InvalidIndexError        (also IndexError) rows or a sample indexed out of range
    │   ├── HtypeError               (also ValueError) an htype or its arguments are not valid
    │   │   ├── UnknownHtypeError    no htype by that name
    │   │   └── HtypeArgumentError   (also TypeError) an argument the htype does not take
    │   └── LinkError                (also ValueError) a link or link setting that is not valid
    │       └── LinkChangedError     a linked object changed since ingest (link_policy "error")
    ├── SampleError                  (also ValueError) a sample does not fit its tensor
    │   └── MissingTensorsError      (also KeyError) an append that leaves tensors out
    ├── VersionError                 a bad commit, branch or version operation
    │   └── MergeConflictError       a merge found rows or tensors both sides changed
    ├── TransformError               a @compute transform failed on an input item
    │   ├── AllSamplesSkippedError   with ignore_errors=True, every input item failed
    │   └── TransformArgumentError   (also TypeError) an argument eval() does not take
    ├── IngestError                  a source could not be turned into a dataset
    ├── FormatError                  bytes on storage are corrupt or of an unsupported version
    ├── ConfigError                  (also ValueError) a TENSORLAKE_* setting has a bad value
    ├── StaleLockWarning             (also UserWarning) a stale writer lock was taken over
    └── LinkChangedWarning           (also UserWarning) a linked object changed since ingest

Catch ``tl.TensorlakeError`` for anything from this library, or a subclass for one
kind of failure. Each error keeps the context that explains it (``key``, ``tensor``,
``index`` ...) as attributes; the underlying error, when there is one, is its
``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "AllSamplesSkippedError",
    "ConditionalWritesError",
    "ConfigError",
    "DatasetArgumentError",
    "DatasetError",
    "DatasetExistsError",
    "DatasetNotFoundError",
    "EmptyTensorError",
    "FormatError",
    "HtypeArgumentError",
    "HtypeError",
    "IngestError",
    "InvalidIndexError",
    "InvalidNameError",
    "KeyNotFoundError",
    "LinkChangedError",
    "LinkChangedWarning",
    "LinkError",
    "LockedError",
    "MergeConflictError",
    "MissingTensorsError",
    "NotPicklableError",
    "PastVersionError",
    "ReadOnlyError",
    "SampleError",
    "StaleLockWarning",
    "StorageArgumentError",
    "StorageError",
    "TensorNotFoundError",
    "TensorlakeError",
    "TransformArgumentError",
    "TransformError",
    "UnknownHtypeError",
    "VersionError",
    "ViewNotFoundError",
]


class TensorlakeError(Exception):
    """Base of every error raised by tensorlake."""


class StorageError(TensorlakeError):
    """A storage provider failed; ``key`` names the object when one is involved."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class KeyNotFoundError(StorageError, KeyError):
    """The key does not exist in the storage."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class StorageArgumentError(StorageError, ValueError):
    """A storage URL, its creds or a storage option is not valid (``tl.load("ftp://...")``,
    ``s3://`` without a bucket, creds for a local path, an unknown S3 creds key)."""


class ReadOnlyError(StorageError):
    """A write was attempted on read-only storage or a read-only dataset."""


class LockedError(StorageError):
    """Another writer holds the dataset's lock; ``holder`` describes it."""

    def __init__(self, message: str, *, key: str | None = None, holder: dict | None = None):
        super().__init__(message, key=key)
        self.holder = holder or {}


class ConditionalWritesError(StorageError):
    """The storage server ignores conditional writes (``If-None-Match: *``), on which the
    writer lock relies: taking the lock there would not keep a second writer out. Open
    the dataset with ``lock="none"`` only where a single writer is certain."""


class DatasetError(TensorlakeError):
    """The dataset cannot perform the requested operation."""


class InvalidNameError(DatasetError, ValueError):
    """A tensor or group name is not valid."""


class InvalidIndexError(DatasetError, IndexError):
    """Rows (or a part of a sample) were selected that do not exist, or by a bad index."""


class HtypeError(DatasetError, ValueError):
    """An htype, or an argument of ``create_tensor`` it governs, is not valid."""


class UnknownHtypeError(HtypeError):
    """No htype has that name."""


class HtypeArgumentError(HtypeError, TypeError):
    """``create_tensor`` got an argument that the htype does not take."""


class LinkError(DatasetError, ValueError):
    """A link, or a setting of linked data, is not valid (``tl.link`` of something that is
    not a path or URL, an empty creds key, an unknown ``link_policy``)."""


class LinkChangedError(LinkError):
    """A linked object read now differs from the version recorded when it was ingested
    (``ds.link_policy = "error"``; the default policy warns with ``LinkChangedWarning``)."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """There is no dataset at the given path."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DatasetExistsError(DatasetError, FileExistsError):
    """A dataset already exists at the given path."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class TensorNotFoundError(DatasetError, KeyError):
    """No tensor or group with that name exists in the dataset."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ViewNotFoundError(DatasetError, KeyError):
    """No saved view has that id (``ds.load_view``, ``ds.delete_view``), or no partition
    that name (``tl.dataset(name)["train"]``)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DatasetArgumentError(DatasetError, ValueError):
    """A dataset method got arguments it cannot act on (duplicate rows to ``pop``, split
    lengths that do not add up, ``tobytes()`` of many rows)."""


class EmptyTensorError(DatasetError):
    """A read of rows of a tensor that holds only empty rows (``None`` appended): no row
    has given it a shape or dtype yet, so there is no array to return (Deep Lake's
    ``EmptyTensorError``). Append one non-empty sample first."""


class NotPicklableError(DatasetError, TypeError):
    """The dataset cannot be pickled: one in memory (``mem://``) exists in one process only."""


class SampleError(TensorlakeError, ValueError):
    """A sample does not fit its tensor's htype, dtype or shape.

    ``tensor`` and ``index`` (the row it would have become) locate it.
    """

    def __init__(self, message: str, *, tensor: str | None = None, index: int | None = None):
        where = f"tensor '{tensor}'" if tensor else "sample"
        if index is not None:
            where += f", row {index}"
        super().__init__(f"{where}: {message}" if tensor or index is not None else message)
        self.tensor = tensor
        self.index = index


class MissingTensorsError(SampleError, KeyError):
    """``ds.append`` / ``ds.extend`` gave no values for some tensors (``missing``) without
    ``skip_ok`` or ``append_empty`` (Deep Lake raises ``KeyError`` here)."""

    def __init__(self, message: str, *, missing: list[str] | None = None) -> None:
        super().__init__(message)
        self.missing = list(missing or [])

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class VersionError(TensorlakeError):
    """A commit, branch or checkout operation is not possible."""


class MergeConflictError(VersionError):
    """``ds.merge`` found changes both sides made to the same rows or tensors;
    ``conflicts`` maps each tensor to the rows in conflict (``None``: the whole tensor)."""

    def __init__(self, message: str, *, conflicts: dict | None = None) -> None:
        super().__init__(message)
        self.conflicts = conflicts or {}


class PastVersionError(ReadOnlyError, VersionError):
    """A write at a past commit: versions other than a branch's head cannot change."""


class TransformError(TensorlakeError):
    """A ``@compute`` transform failed; ``index`` and ``item`` locate the input."""

    def __init__(
        self,
        message: str,
        *,
        index: int | None = None,
        item: object = None,
        samples_processed: int | None = None,
    ) -> None:
        super().__init__(message)
        self.index = index
        self.item = item
        self.samples_processed = samples_processed


class AllSamplesSkippedError(TransformError):
    """With ``ignore_errors=True`` every input item failed: nothing was written (Deep
    Lake's error of that name)."""


class TransformArgumentError(TransformError, TypeError):
    """``eval`` was given an argument it does not take."""


class IngestError(TensorlakeError):
    """A data source could not be read or turned into a dataset."""


class FormatError(TensorlakeError):
    """Stored bytes are corrupt (checksum mismatch, truncation) or of an unsupported format."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class ConfigError(TensorlakeError, ValueError):
    """A setting (a ``TENSORLAKE_*`` environment variable) has a value that is not valid."""


class StaleLockWarning(TensorlakeError, UserWarning):
    """A stale writer lock was taken over.

    Issued (with ``warnings.warn``) when a writer finds the dataset's lock left by
    a process that is gone or whose lease ran out, and replaces it. It is a
    ``TensorlakeError`` so that, with warnings turned into errors, it is caught
    with every other tensorlake error.
    """


class LinkChangedWarning(TensorlakeError, UserWarning):
    """A linked object read now differs from the version recorded when it was ingested.

    Set ``ds.link_policy = "error"`` to make this an error, ``"ignore"`` to silence it.
    """
