"""The local home: ``$TENSORLAKE_HOME/datasets/<name>/``, one dataset per name, and the
registry record each copy keeps beside its objects (``tensorlake.api.names``).

``local_datasets`` answers ``tensorlake ls`` from the records' cached summaries: a
copy's branch head and staging state are checked (two small reads), and only a copy
that changed since its summary was cached is opened.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tensorlake import config
from tensorlake.api.factory import load
from tensorlake.api.names import RECORD_NAME, read_record
from tensorlake.engine.format import keys, records
from tensorlake.errors import DatasetNotFoundError
from tensorlake.ingestion.naming import check_dataset_name

__all__ = [
    "FORMAT_ENTRIES",
    "dataset_root",
    "datasets_dir",
    "extra_files",
    "local_datasets",
    "local_head",
    "local_names",
    "remember",
    "summarize",
    "write_record",
]

FORMAT_ENTRIES = frozenset(
    {keys.DATASET_META_KEY, keys.LOCK_KEY, keys.TAKEOVER_KEY, RECORD_NAME}
    | {
        prefix.split("/")[0]
        for prefix in (
            keys.REFS_PREFIX,
            keys.COMMITS_PREFIX,
            keys.STAGING_PREFIX,
            keys.SEGMENTS_PREFIX,
            keys.TENSORS_PREFIX,
        )
    }
)
"""Top-level entries of a dataset folder that are the dataset itself (or its record);
anything else there (``README.md``, ``assets/``) is an extra file, shared with it."""


def datasets_dir() -> Path:
    return config.home() / "datasets"


def dataset_root(name: str) -> Path:
    """Where the local copy of ``name`` lives (whether or not it exists)."""
    return datasets_dir() / check_dataset_name(name)


def local_names() -> list[str]:
    """The names of the local datasets, sorted."""
    try:
        entries = os.listdir(datasets_dir())
    except FileNotFoundError:
        return []
    return sorted(e for e in entries if not e.startswith(".") and os.path.exists(_meta_file(e)))


def _meta_file(name: str) -> Path:
    return datasets_dir() / name / keys.DATASET_META_KEY


def local_head(root: Path, branch: str = records.DEFAULT_BRANCH) -> tuple[str | None, bool]:
    """``(head commit, has a staging state)`` of ``branch`` in the copy at ``root``, read
    straight from its files."""
    try:
        head = (root / keys.ref_key(branch)).read_text().strip()
    except FileNotFoundError:
        return None, False
    return head, (root / keys.staging_key(branch)).exists()


def write_record(root: Path, record: dict[str, Any]) -> None:
    """Replace the registry record of the copy at ``root`` (atomically)."""
    tmp = root / f"{RECORD_NAME}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
    os.replace(tmp, root / RECORD_NAME)


def extra_files(root: Path) -> list[str]:
    """The extra files of the copy at ``root`` (``/``-separated paths), sorted."""
    found = []
    for entry in sorted(os.listdir(root)):
        if entry in FORMAT_ENTRIES or entry.startswith(f"{RECORD_NAME}."):
            continue
        path = root / entry
        if path.is_file():
            found.append(entry)
        for parent, dirs, files in os.walk(path):
            dirs.sort()
            rel = Path(parent).relative_to(root).as_posix()
            found.extend(f"{rel}/{f}" for f in sorted(files))
    return found


def summarize(root: Path) -> dict[str, Any]:
    """Rows, tensors and bytes of the copy at ``root`` (opens it; for the cache)."""
    ds = load(root, read_only=True)
    size = 0
    for parent, _, files in os.walk(root):
        size += sum(os.path.getsize(os.path.join(parent, f)) for f in files if f != RECORD_NAME)
    return {"rows": len(ds), "tensors": len(ds.tensors), "bytes": size}


def local_datasets() -> Iterator[dict[str, Any]]:
    """One entry per local dataset: name, rows, tensors, bytes, head commit, whether it
    has uncommitted changes, the last version pushed or pulled, and ``pushed`` (its head
    is a published version)."""
    for name in local_names():
        root = datasets_dir() / name
        head, staged = local_head(root)
        record = read_record(root)
        cached = record.get("summary") or {}
        if cached.get("head") != head or cached.get("staged") != staged:
            try:
                cached = {**summarize(root), "head": head, "staged": staged}
            except DatasetNotFoundError:
                continue  # removed meanwhile
            record["summary"] = cached
            try:
                write_record(root, record)
            except OSError:
                pass  # a read-only home: the summary is recomputed next time
        versions = record.get("versions", {})
        published = [int(v) for v, c in versions.items() if c == head]
        yield {
            "name": name,
            "rows": cached["rows"],
            "tensors": cached["tensors"],
            "bytes": cached["bytes"],
            "head": head,
            "uncommitted": staged,
            "version": max(published) if published else None,
            "pushed": bool(published) and not staged,
            "path": str(root),
        }


def remember(root: Path, name: str, published: list[Any], history: set[str]) -> None:
    """Record in the copy at ``root`` the published versions (``remote.Version``) whose
    commits it holds."""
    record = read_record(root)
    versions = record.setdefault("versions", {})
    versions.update({str(v.number): v.commit for v in published if v.commit in history})
    record["name"] = name
    write_record(root, record)
