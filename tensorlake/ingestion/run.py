"""What every ingestion source shares: opening the destination, running the transform
on ``@tl.compute``, cleaning up after a failure, and the report stored with the commit.

Failure semantics, the same for every source: a failed ingest leaves ``dest`` at its
last checkpoint (``compute`` resets it there), or, when this ingest created ``dest`` and
stored no checkpoint yet, absent: never a half-written dataset. ``resume=True`` reopens
``dest`` at its last checkpoint (dropping what a crashed run left uncommitted) and the
source goes on with the files that checkpoint does not hold.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tensorlake.api.dataset import Dataset, core_of
from tensorlake.api.factory import delete, empty, exists, load
from tensorlake.compute import ComputeFunction
from tensorlake.errors import (
    IngestError,
    SampleError,
    StorageError,
    TensorNotFoundError,
    TransformError,
)

__all__ = [
    "INFO_KEY",
    "IngestReport",
    "held",
    "open_dest",
    "require_tensors",
    "run_transform",
    "use_creds",
]

INFO_KEY = "ingest"
"""``ds.info[INFO_KEY]``: the report of the ingest that made the checked-out commit."""

SHOWN = 10  # file names per kind listed in a printed report


@dataclass(slots=True)
class IngestReport:
    """What an ingest found at the source and did with it; stored in ``ds.info["ingest"]``."""

    source: str
    rows: int = 0  # rows appended by this ingest
    found: int = 0  # files at the source
    already: int = 0  # files an earlier ingest (or the resumed checkpoint) holds
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> files
    failed: list[str] = field(default_factory=list)  # files that failed (ignore_errors)
    notes: list[str] = field(default_factory=list)  # decisions the user should know of
    seconds: float = 0.0

    def skip(self, reason: str, key: str) -> None:
        self.skipped.setdefault(reason, []).append(key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows": self.rows,
            "found": self.found,
            "already": self.already,
            "skipped": self.skipped,
            "failed": self.failed,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }

    def __str__(self) -> str:
        lines = [
            f"Ingested {self.rows} rows from {self.source} in {self.seconds:.1f}s "
            f"({self.found} files found"
            + (f", {self.already} already in the dataset" if self.already else "")
            + ")."
        ]
        for reason, keys in self.skipped.items():
            lines.append(f"  skipped {len(keys)} {reason}: {_some(keys)}")
        if self.failed:
            lines.append(f"  {len(self.failed)} failed and skipped: {_some(self.failed)}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _some(keys: Sequence[str]) -> str:
    more = f", ... ({len(keys) - SHOWN} more)" if len(keys) > SHOWN else ""
    return ", ".join(keys[:SHOWN]) + more


def open_dest(
    dest: str | os.PathLike[str] | Dataset,
    creds: dict[str, Any] | None,
    overwrite: bool,
    resume: bool,
) -> tuple[Dataset, bool]:
    """The destination dataset, and whether this call created it.

    An existing dataset is continued: with ``resume`` from its last commit, else it
    must have no uncommitted changes (a run that crashed leaves some). With ``resume``,
    one with no commit and no tensor (an ingest killed before its first commit leaves
    that) is made as if new.
    """
    if isinstance(dest, Dataset):
        if overwrite:
            raise IngestError("overwrite=True needs a path, not an open dataset.")
        ds, created = dest, False
    elif overwrite or not exists(dest, creds=creds):
        return empty(dest, overwrite=overwrite, creds=creds), True
    else:
        ds, created = load(dest, creds=creds, reset=resume), False
    if ds.read_only or ds.is_view:
        raise IngestError("dest must be a whole dataset open for writing.")
    if resume and isinstance(dest, Dataset):
        ds.reset()
    if resume and not ds.tensors and not ds.commits:
        # what an ingest killed before its first commit leaves (the empty root commit):
        # this run makes the dataset, as if it were new
        created = True
    if ds.has_head_changes:
        raise IngestError(
            f"The dataset at {ds.path} has uncommitted changes (an ingest that did not "
            "finish leaves some). Pass resume=True to continue from its last checkpoint, "
            "commit or reset() them first, or overwrite=True to start again."
        )
    return ds, created


def held(ds: Dataset, tensor: str) -> set[str]:
    """What the text tensor ``tensor`` holds (the sources earlier ingests recorded)."""
    values = ds[tensor]
    return set(values.numpy(aslist=True)) if len(values) else set()


def require_tensors(ds: Dataset, names: Sequence[str], made_by: str) -> None:
    """An existing ``dest`` must have the tensors the ingest appends to."""
    missing = []
    for name in names:
        try:
            ds[name]
        except TensorNotFoundError:
            missing.append(name)
    if missing:
        raise IngestError(
            f"The dataset at {ds.path} has no tensors {missing}: it was not made by "
            f"{made_by}. Pass overwrite=True to replace it, or another dest."
        )


def use_creds(ds: Dataset, key: str, creds: dict[str, Any] | None) -> None:
    """Have links name ``key``, and give this session ``creds`` for it (when given)."""
    if key not in ds.get_creds_keys():
        ds.add_creds_key(key)
    if creds:
        ds.populate_creds(key, creds)


def run_transform(
    transform: ComputeFunction,
    items: Sequence[Any],
    ds: Dataset,
    created: bool,
    report: IngestReport,
    *,
    num_workers: int,
    checkpoint_interval: int,
    ignore_errors: bool,
    progressbar: bool,
    batch: int | None = None,
    find_failed: Callable[[], list[str]] | None = None,
) -> None:
    """Append ``transform``'s rows of ``items`` to ``ds`` and commit them with ``report``
    (``report.rows`` and ``report.failed`` are filled in). A row that fails validation
    (a corrupt file) is a ``SampleError`` naming it, chained to the eval's
    ``TransformError`` (which says where it stopped); a source the storage could not
    read (an outage, after the storage's retries) is an ``IngestError`` chained to the
    ``StorageError``.

    ``batch``: the transform gets lists of that many items (appending rows a batch at
    a time costs a fraction of appending them one by one), and ``checkpoint_interval``
    (in items) is rounded up to whole batches. ``find_failed``: the source's own list of
    what failed with ``ignore_errors`` (default: the items of what the eval skipped)."""
    if not items:  # nothing new at the source: no commit
        return
    started = time.perf_counter()
    units: Sequence[Any] = items
    if batch is not None:
        units = [items[i : i + batch] for i in range(0, len(items), batch)]
    before = len(ds.commits) if created else 0  # (a walk of the history: only when short)
    try:
        result = transform.eval(
            units,
            ds,
            num_workers=num_workers,
            checkpoint_interval=-(-checkpoint_interval // (batch or 1)),
            ignore_errors=ignore_errors,
            progressbar=progressbar,
        )
    except BaseException as err:
        if created and len(ds.commits) <= before + 1:  # no checkpoint of this ingest
            _remove(ds)
        cause = err.__cause__
        if isinstance(err, TransformError) and isinstance(cause, SampleError):
            # the row that failed names its file; the checkpoint text says where to resume
            done = err.samples_processed or 0
            raise SampleError(f"{cause} Last checkpoint: {done} samples processed.") from err
        if isinstance(err, TransformError) and isinstance(cause, StorageError):
            # the storage failed (after its retries), not the item: say so, and how to go on
            done = err.samples_processed or 0
            raise IngestError(
                f"Cannot read the source {report.source} ({cause}); the last checkpoint "
                f"holds {done} samples. Run the same ingest again once the storage answers "
                "(resume=True continues from a checkpoint)."
            ) from cause
        raise
    report.rows += result.samples
    if find_failed is not None:
        failed = find_failed()
        report.failed += failed
        if failed:  # the eval saw no failure: the source left these out itself
            warnings.warn(
                f"{len(failed)} of {len(failed) + report.rows} files failed and were skipped "
                f"({_some(failed)}); ds.info['{INFO_KEY}']['failed'] lists them all.",
                stacklevel=3,
            )
    else:
        for i in result.failed_indices:
            report.failed += [str(x) for x in units[i]] if batch else [str(units[i])]
    report.seconds += time.perf_counter() - started
    ds.info[INFO_KEY] = report.to_dict()
    ds.commit(f"Ingested {report.rows} rows from {report.source}")


def _remove(ds: Dataset) -> None:
    try:
        ds.close()
        delete(ds.path, creds=core_of(ds).creds)
    except Exception:  # the error being raised matters more; a reset() recovers this
        pass
