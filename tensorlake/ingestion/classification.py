"""``tl.ingest_classification``: an image-classification folder (local or an S3 prefix)
as a dataset, in one call.

Layouts: ``<class>/<file>``, or ``<split>/<class>/<file>`` when every top folder is a
split name (``train``, ``val``, ``test`` ...; then a ``splits`` tensor records each row's
split and ``tl.split_views`` gives a view per split). Class names are the class folders'
names, sorted. Rows follow the sorted file names, so a run is reproducible and a
re-ingest of a grown folder appends only the files the dataset does not hold yet (a
hidden tensor keeps where each row came from), as one new commit.

JPEG and PNG bytes are stored as they are when the images tensor has their format: a
folder of one format gets that format; a folder mixing them is stored as PNG, which
loses nothing (a JPEG is decoded once and kept exactly as a reader would decode it).
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tensorlake.api.dataset import Dataset
from tensorlake.compute import compute
from tensorlake.engine.links.sample import link as make_link
from tensorlake.errors import IngestError, SampleError
from tensorlake.ingestion.files import (
    IMAGE_EXTENSIONS,
    PREFETCH,
    FileSource,
    image_sample,
    is_hidden,
)
from tensorlake.ingestion.run import (
    IngestReport,
    held,
    open_dest,
    require_tensors,
    run_transform,
    use_creds,
)

__all__ = [
    "SOURCES_TENSOR",
    "SPLIT_NAMES",
    "Found",
    "ingest_classification",
    "scan",
    "split_views",
]

SPLIT_NAMES = ("train", "training", "val", "valid", "validation", "dev", "test", "testing")
"""Top folder names taken as splits (case-insensitive), in the order splits are listed."""

SOURCES_TENSOR = "_sources"
"""The hidden text tensor holding each row's source file (its path or s3:// URL)."""

SPLITS_TENSOR = "splits"


BATCH = 32
"""Files per input item of the transform: rows are appended a batch at a time, which
costs a fraction of appending them one by one."""


@dataclass(slots=True)
class _Plan:
    """What every row needs: its label and its split."""

    source: FileSource
    labels: dict[str, np.ndarray]  # key -> class id, as the stored (1,) uint32 row
    splits: dict[str, np.ndarray] | None  # key -> split id, for split layouts
    images: str
    label_tensor: str
    link: bool
    creds_key: str | None
    skip_bad: bool  # ignore_errors: a bad file is left out (and reported), not raised


@compute
def classification_rows(batch: list[str], sample_out: Any, plan: _Plan) -> None:
    """A batch of files -> their rows (image or link, label, split, where it came from)."""
    source = plan.source
    rows: dict[str, list[Any]] = {plan.images: [], plan.label_tensor: [], SOURCES_TENSOR: []}
    if plan.splits is not None:
        rows[SPLITS_TENSOR] = []
    for k, key in enumerate(batch):
        where = source.record(key)
        if plan.link:
            image: Any = make_link(source.location(key), creds_key=plan.creds_key)
        else:
            # this file and the next ones of the batch (the next batch may be another
            # worker's: fetching into it would fetch files twice)
            source.read_ahead(batch[k : k + 1 + PREFETCH])
            try:
                image = image_sample(source.read(key), where)
            except SampleError:
                if plan.skip_bad:
                    continue
                raise
        rows[plan.images].append(image)
        rows[plan.label_tensor].append(plan.labels[key])
        rows[SOURCES_TENSOR].append(where)
        if plan.splits is not None:
            rows[SPLITS_TENSOR].append(plan.splits[key])
    sample_out.extend(rows)


def ingest_classification(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str] | Dataset,
    image_params: dict[str, Any] | None = None,
    label_params: dict[str, Any] | None = None,
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
    shuffle: bool = False,
    creds_key: str | None = None,
    source_name: str | None = None,
) -> Dataset:
    """Ingest an image-classification folder, local or ``s3://bucket/prefix/``.

    ``image_params`` / ``label_params``: ``create_tensor`` arguments of the images and
    labels tensors, with ``name`` to rename them (default ``images`` and ``labels``).
    ``src_creds``: S3 credentials of the source (keys, ``endpoint_url`` for any
    S3-compatible server, or ``profile_name``). ``link=True`` stores ``link[image]``
    rows pointing at the source files instead of copying them (``creds_key`` names
    the dataset's credentials for them). ``num_workers``, ``checkpoint_interval`` (in
    files, rounded up to whole batches of 32), ``ignore_errors`` and ``progressbar`` are
    ``eval``'s; ``resume=True`` continues an
    ingest that stopped, from its last checkpoint. ``shuffle=True`` appends the new
    files in a random (seeded, reproducible) order instead of sorted; Deep Lake
    shuffles by default, tensorlake does not: sorted rows make reruns and resumes
    append exactly what is missing, and the loader shuffles. ``source_name``: how the
    dataset records the source (default ``src``; ``ingest_archive`` gives its URL).

    Example::

        ds = tl.ingest_classification(
            "s3://digits/mnist/", "./mnist",
            src_creds={"endpoint_url": "http://s3:9000", "aws_access_key_id": "...",
                       "aws_secret_access_key": "..."},
            num_workers=2, checkpoint_interval=10_000,
        )
        train = tl.split_views(ds)["train"]
    """
    source = FileSource(src, src_creds, source_name)
    report = IngestReport(source.name)
    found = scan(source, report)
    if not found.images:
        raise IngestError(
            f"No images in {source.name}: expected <class>/<file> or <split>/<class>/<file> "
            f"with {', '.join(sorted(IMAGE_EXTENSIONS))} files"
            + (f"; found {report.found} other files" if report.found else ", found nothing")
            + "."
        )
    image_args = dict(image_params or {})
    label_args = dict(label_params or {})
    images = image_args.pop("name", "images")
    labels = label_args.pop("name", "labels")
    ds, created = open_dest(dest, dest_creds, overwrite, resume)
    if created:
        _create(ds, found, images, image_args, labels, label_args, link, report)
    else:
        _check_schema(ds, found, images, labels)
    recorded = held(ds, SOURCES_TENSOR)
    todo = [k for k in found.images if source.record(k) not in recorded]
    report.already = len(found.images) - len(todo)
    if shuffle:
        random.Random(0).shuffle(todo)
    class_ids = _class_ids(ds, labels, found.classes)
    split_ids = None
    if found.splits:
        names = list(ds[SPLITS_TENSOR].info.class_names)
        split_rows = {s: _label_row(names.index(s)) for s in found.splits}
        split_ids = {k: split_rows[found.split_of[k]] for k in todo}
    label_rows = {name: _label_row(i) for name, i in class_ids.items()}
    if link and src_creds:  # readers give the same credentials under this key
        creds_key = creds_key or "source"
        use_creds(ds, creds_key, src_creds)
    plan = _Plan(
        source,
        {k: label_rows[found.class_of[k]] for k in todo},
        split_ids,
        images,
        labels,
        link,
        creds_key,
        ignore_errors,
    )
    run_transform(
        classification_rows(plan=plan),
        todo,
        ds,
        created,
        report,
        batch=BATCH,
        num_workers=num_workers,
        checkpoint_interval=checkpoint_interval,
        ignore_errors=ignore_errors,
        progressbar=progressbar,
        find_failed=(lambda: _missing(ds, source, todo)) if ignore_errors else None,
    )
    if summary:
        print(report)
        ds.summary()
    return ds


@dataclass(slots=True)
class Found:
    """What a listing holds: image files with their class (and split), class folders."""

    images: list[str] = field(default_factory=list)
    class_of: dict[str, str] = field(default_factory=dict)
    split_of: dict[str, str] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)  # sorted
    splits: list[str] = field(default_factory=list)  # in SPLIT_NAMES order
    formats: dict[str, int] = field(default_factory=dict)  # format -> files


def scan(source: FileSource, report: IngestReport) -> Found:
    """What a classification folder holds; what does not belong is noted in ``report``."""
    keys = source.list()
    report.found = len(keys)
    visible: list[tuple[str, list[str], str]] = []  # key, its parts, its format
    for key in keys:
        fmt = IMAGE_EXTENSIONS.get(os.path.splitext(key)[1].lower())
        if is_hidden(key):
            report.skip("hidden files", key)
        elif fmt is None:
            report.skip("files that are not images (by their extension)", key)
        else:
            visible.append((key, key.split("/"), fmt))
    tops = {parts[0].lower() for _, parts, _ in visible if len(parts) > 1}
    split_layout = bool(tops) and tops <= set(SPLIT_NAMES)
    depth = 3 if split_layout else 2
    found = Found()
    for key, parts, fmt in visible:
        if len(parts) < depth:
            report.skip("files outside a class folder", key)
            continue
        found.images.append(key)
        found.class_of[key] = parts[depth - 2]
        if split_layout:
            found.split_of[key] = parts[0]
        found.formats[fmt] = found.formats.get(fmt, 0) + 1
    found.classes = sorted(set(found.class_of.values()) | set(source.empty_folders(depth - 1)))
    empty = sorted(set(found.classes) - set(found.class_of.values()))
    if empty:
        report.notes.append(f"class folders without images (kept as class names): {empty}")
    if split_layout:
        order = {name: i for i, name in enumerate(SPLIT_NAMES)}
        found.splits = sorted(set(found.split_of.values()), key=lambda s: order[s.lower()])
    return found


def _create(
    ds: Dataset,
    found: Found,
    images: str,
    image_args: dict[str, Any],
    labels: str,
    label_args: dict[str, Any],
    link: bool,
    report: IngestReport,
) -> None:
    mixed = len(found.formats) > 1
    if link:
        image_args.setdefault("htype", "link[image]")
    if link and mixed and "sample_compression" not in image_args:
        # links keep each file as it is: nothing is re-encoded; verify checks one format
        image_args["sample_compression"] = max(found.formats, key=lambda f: found.formats[f])
        image_args.setdefault("verify", False)
        report.notes.append(f"JPEG and PNG files mixed ({found.formats}): linked as they are")
    elif "sample_compression" not in image_args:
        image_args["sample_compression"] = "png" if mixed else next(iter(found.formats))
        if mixed:
            report.notes.append(
                f"JPEG and PNG files mixed ({found.formats}): stored as PNG, which loses "
                "nothing; image_params={'sample_compression': 'jpeg'} keeps the JPEG bytes "
                "and re-encodes the PNGs"
            )
    image_args.setdefault("htype", "image")
    label_args.setdefault("class_names", found.classes)
    with ds:
        ds.create_tensor(images, **image_args)
        ds.create_tensor(labels, htype="class_label", **label_args)
        if found.splits:
            ds.create_tensor(SPLITS_TENSOR, htype="class_label", class_names=found.splits)
        ds.create_tensor(SOURCES_TENSOR, htype="text", hidden=True)


def _check_schema(ds: Dataset, found: Found, images: str, labels: str) -> None:
    """An existing dataset must be one this function made, with the same layout."""
    needed = [images, labels, SOURCES_TENSOR] + ([SPLITS_TENSOR] if found.splits else [])
    require_tensors(ds, needed, "ingest_classification from such a folder")
    if found.splits:
        known = list(ds[SPLITS_TENSOR].info.class_names)
        new = [s for s in found.splits if s not in known]
        if new:
            ds[SPLITS_TENSOR].info.update(class_names=known + new)


def _missing(ds: Dataset, source: FileSource, todo: list[str]) -> list[str]:
    """The files of ``todo`` the rows do not hold: those that failed (left out of their
    batch, or with it when the batch itself failed)."""
    recorded = held(ds, SOURCES_TENSOR)
    return [k for k in todo if source.record(k) not in recorded]


def _label_row(class_id: int) -> np.ndarray:
    """A class id as the row a class_label tensor stores (shared: rows are not changed)."""
    row = np.array([class_id], dtype=np.uint32)
    row.flags.writeable = False
    return row


def _class_ids(ds: Dataset, labels: str, classes: Sequence[str]) -> dict[str, int]:
    """Each class name's id; names new to the dataset get the next ids (old ids stay)."""
    names = list(ds[labels].info.get("class_names") or [])
    new = [c for c in classes if c not in names]
    if new:
        ds[labels].info.update(class_names=names + new)
        names += new
    return {name: names.index(name) for name in names}


def split_views(ds: Dataset, tensor: str = SPLITS_TENSOR) -> dict[str, Dataset]:
    """A view of ``ds`` per split (``{"train": ds[rows], "val": ...}``), from the
    ``splits`` tensor ``ingest_classification`` writes for ``<split>/<class>/<file>``.

    Example::

        views = tl.split_views(ds)
        train, val = views["train"], views["val"]
    """
    if tensor not in ds.tensors:
        raise IngestError(
            f"The dataset has no '{tensor}' tensor: only a folder laid out as "
            "<split>/<class>/<file> records splits."
        )
    ids = ds[tensor].numpy(aslist=True)
    rows: dict[int, list[int]] = {}
    for row, value in enumerate(ids):
        rows.setdefault(int(value[0]), []).append(row)
    names = list(ds[tensor].info.class_names)
    return {names[i]: ds[rows.get(i, [])] for i in range(len(names))}
