"""``ingest_manifest``: register cloud objects listed in a JSON or CSV manifest (Encord's
registration files) as a dataset of ``link[image]`` rows, in one call. The manifest is
read and checked whole first (``manifest_reading.py``).

Tensors: ``images`` (``link[image]``, or the copied bytes with ``link=False``),
``titles`` (text), ``metadata`` (json: each row's ``clientMetadata``), ``meta/<key>`` for
each metadata key that every row of the first ingest has with one scalar type, and the
hidden ``_sources`` (each row's URL as the manifest wrote it), which makes
``skip_duplicate_urls`` skip URLs the dataset already holds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tensorlake.api.dataset import Dataset
from tensorlake.compute import compute
from tensorlake.engine.htypes.sample import Sample
from tensorlake.engine.links.resolver import LinkResolver
from tensorlake.engine.links.sample import LinkedSample
from tensorlake.engine.links.sample import link as make_link
from tensorlake.errors import (
    IngestError,
    KeyNotFoundError,
    SampleError,
    StorageError,
    TensorlakeError,
)
from tensorlake.ingestion.files import IMAGE_EXTENSIONS, check_image
from tensorlake.ingestion.manifest_reading import PLAIN_URL, Manifest, Rejection, read_manifest
from tensorlake.ingestion.run import (
    SHOWN,
    IngestReport,
    held,
    open_dest,
    require_tensors,
    run_transform,
    use_creds,
)

__all__ = ["META_GROUP", "SOURCES_TENSOR", "ingest_manifest"]

SOURCES_TENSOR = "_sources"
"""The hidden text tensor holding each row's URL, as the manifest wrote it."""

META_GROUP = "meta"
"""The group of the typed tensors, one per metadata key (``meta/<key>``)."""

_SCALARS: tuple[tuple[type, str], ...] = ((bool, "bool"), (int, "int64"), (float, "float64"))
BATCH = 64
"""Rows per input item of the transform (appending a batch costs a fraction of appending
rows one by one); 1 with ``verify="decode"``, so a bad object costs only its own row."""


# -- ingesting -------------------------------------------------------------------------
@dataclass(slots=True)
class _Plan:
    """What the rows need beside the batch: where images go, how they are read."""

    link: bool
    creds_key: str | None
    resolver: LinkResolver | None  # link=False: reads each object
    typed: dict[str, tuple[str, str]]  # tensor -> (metadata key, dtype)
    skip_bad: bool
    found: Manifest  # the rows; each input item is a (start, stop) range of them


@compute
def manifest_rows(batch: list[int], sample_out: Any, plan: _Plan) -> None:
    """Rows ``batch`` of the manifest -> rows of every tensor."""
    rows: dict[str, list[Any]] = {"images": [], "titles": [], "metadata": [], SOURCES_TENSOR: []}
    for name in plan.typed:
        rows[name] = []
    found = plan.found
    for i in batch:
        url, title, meta = found.urls[i], found.titles[i], found.metadata[i]
        if plan.link:  # an s3:// or http(s):// URL is a link as it is
            image: Any = (
                LinkedSample(url, plan.creds_key)
                if PLAIN_URL.match(url)
                else make_link(url, creds_key=plan.creds_key)
            )
        else:
            assert plan.resolver is not None, "link=False plans carry a resolver"
            try:
                data, _ = plan.resolver.fetch(make_link(url, creds_key=plan.creds_key))
                check_image(data, url)
            except (SampleError, KeyNotFoundError):
                if plan.skip_bad:
                    continue
                raise
            image = Sample(data=data)
        rows["images"].append(image)
        rows["titles"].append(title)
        rows["metadata"].append(meta)
        rows[SOURCES_TENSOR].append(url)
        for name, (key, dtype) in plan.typed.items():
            rows[name].append(meta[key] if dtype == "str" else np.asarray(meta[key], dtype))
    sample_out.extend(rows)


def ingest_manifest(
    manifest: str | os.PathLike[str],
    dest: str | os.PathLike[str] | Dataset,
    link: bool = True,
    skip_duplicate_urls: bool = False,
    creds_key: str | None = None,
    verify: bool | str = False,
    num_workers: int = 0,
    checkpoint_interval: int = 0,
    resume: bool = False,
    ignore_errors: bool = False,
    progressbar: bool = True,
    summary: bool = True,
    overwrite: bool = False,
    src_creds: dict[str, Any] | None = None,
    dest_creds: dict[str, Any] | None = None,
) -> Dataset:
    """Register the images a JSON or CSV manifest lists (see the module docstring) as a
    dataset of ``link[image]`` rows (``link=False`` copies their bytes), with their titles
    and client metadata, as one commit.

    Nothing is written when a row is bad (an ``IngestError`` lists the first rejections)
    unless ``ignore_errors=True``: then the good rows are ingested and
    ``ds.info["ingest"]`` keeps every rejection. ``skip_duplicate_urls=True`` (or the
    manifest's own key) skips URLs repeated in the manifest or already in the dataset, so
    the next manifest into the same dataset adds only new objects. ``verify=True`` checks
    that each object exists (a HEAD), ``verify="decode"`` fetches and checks each image.
    ``src_creds``: S3 credentials of the manifest and the objects (given to readers under
    ``creds_key``, default ``"source"``). ``num_workers``, ``checkpoint_interval`` (in
    rows), ``resume`` and ``progressbar`` are as for every ingest.

    Example::

        ds = tl.ingest_manifest("s3://labels/register.json", "s3://datasets/raw",
                                src_creds=creds, skip_duplicate_urls=True)
    """
    if verify not in (False, True, "decode"):
        raise IngestError(f'verify must be False, True or "decode", got {verify!r}.')
    found = read_manifest(manifest, skip_duplicate_urls, src_creds)
    skip = skip_duplicate_urls or found.skip_duplicate_urls
    resolver = LinkResolver(["source"] if src_creds else [])
    object_key = "source" if src_creds else None
    if src_creds:
        resolver.set_creds("source", src_creds)
    if verify is True:
        _verify(found, resolver, object_key)
    arns = [i for i, url in enumerate(found.urls) if url.startswith("arn:")]
    found.unsupported += [Rejection(found.location(i), _ARN_UNSUPPORTED) for i in arns]
    if arns:
        found.keep(sorted(set(range(len(found.urls))) - set(arns)))
    _refuse(found, ignore_errors)
    if not found.urls:
        what = f"{len(found.rejected)} rejected rows, {len(found.unsupported)} items " + (
            "tensorlake cannot ingest"
        )
        raise IngestError(f"{found.source} lists no images to ingest ({what}).")
    report = IngestReport(found.source, found=found.items)
    ds, created = open_dest(dest, dest_creds, overwrite, resume)
    if created:
        _create(ds, found, link, verify == "decode", report)
    else:
        require_tensors(ds, ("images", "titles", "metadata", SOURCES_TENSOR), "ingest_manifest")
    typed = _typed_tensors(ds)
    recorded = held(ds, SOURCES_TENSOR)
    keep = []
    for i, (url, meta) in enumerate(zip(found.urls, found.metadata)):
        if url in recorded:
            if skip or resume:  # a resumed ingest goes on after what its checkpoint holds
                report.already += 1
            else:
                found.rejected.append(
                    Rejection(found.location(i), "the URL is already in the dataset")
                )
            continue
        missing = next((t for t, (k, d) in typed.items() if not _fits(meta.get(k), d)), None)
        if missing is not None:
            key, dtype = typed[missing]
            found.rejected.append(
                Rejection(
                    found.location(i), f"clientMetadata needs '{key}' as {dtype} (tensor {missing})"
                )
            )
            continue
        keep.append(i)
    if len(keep) < len(found.urls):
        found.keep(keep)
    _refuse(found, ignore_errors)  # rows the dataset rejects (a new one rejects none)
    for r in found.rejected:
        report.skip("rejected rows", str(r))
    for r in found.unsupported:
        report.skip("items tensorlake cannot ingest", str(r))
    for r in found.duplicates:
        report.skip("duplicate URLs", str(r))
    if link and (src_creds or creds_key):
        creds_key = creds_key or "source"
        use_creds(ds, creds_key, src_creds)
    plan = _Plan(
        link,
        creds_key if link else object_key,
        None if link else resolver,
        typed,
        ignore_errors,
        found,
    )
    run_transform(
        manifest_rows(plan=plan),
        list(range(len(found.urls))),
        ds,
        created,
        report,
        batch=1 if verify == "decode" or not link else BATCH,
        num_workers=num_workers,
        checkpoint_interval=checkpoint_interval,
        ignore_errors=ignore_errors,
        progressbar=progressbar,
        find_failed=(lambda: _missing(ds, found.urls)) if ignore_errors else None,
    )
    if summary:
        print(report)
        ds.summary()
    return ds


def _refuse(found: Manifest, ignore_errors: bool) -> None:
    if ignore_errors or not found.rejected:
        return
    shown = "\n".join(f"  {r}" for r in found.rejected[:SHOWN])
    more = len(found.rejected) - SHOWN
    raise IngestError(
        f"{len(found.rejected)} rows of {found.source} are rejected, so nothing was "
        f"ingested:\n{shown}" + (f"\n  ... ({more} more)" if more > 0 else "") + "\nFix "
        "them, or pass ignore_errors=True to ingest the other rows (ds.info['ingest'] then "
        "lists every rejection)."
    )


def _verify(found: Manifest, resolver: LinkResolver, creds_key: str | None) -> None:
    """A HEAD per object (bounded concurrency): missing or empty objects are rejected;
    a storage that fails (an outage, refused access) stops the ingest (``IngestError``)."""

    def problem(url: str) -> str | StorageError | None:
        try:
            info = resolver.info(make_link(url, creds_key=creds_key))
        except KeyNotFoundError:
            return "the object does not exist"
        except StorageError as err:  # the storage failed (after its retries), not the row
            return err
        except (TensorlakeError, OSError, ValueError) as err:
            return f"the object cannot be checked: {err}"
        return "the object is empty" if info.size == 0 else None

    problems = resolver.map_concurrently(problem, found.urls)
    failed = next((p for p in problems if isinstance(p, StorageError)), None)
    if failed is not None:
        raise IngestError(
            f"Cannot verify the objects of {found.source} ({failed}), so nothing was "
            "ingested. Run it again once the storage answers (check src_creds if it refuses "
            "access)."
        ) from failed
    keep = []
    for i, reason in enumerate(problems):
        if reason is None:
            keep.append(i)
        else:
            found.rejected.append(Rejection(found.location(i), str(reason)))
    if len(keep) < len(found.urls):
        found.keep(keep)


def _create(ds: Dataset, found: Manifest, link: bool, decode: bool, report: IngestReport) -> None:
    formats: dict[str, int] = {}
    for url in found.urls:
        fmt = IMAGE_EXTENSIONS.get(os.path.splitext(url.split("?", 1)[0])[1].lower())
        if fmt is not None:
            formats[fmt] = formats.get(fmt, 0) + 1
    compression = max(formats, key=lambda f: formats[f]) if formats else "jpeg"
    if len(formats) > 1 or not formats:
        report.notes.append(
            f"image formats by extension {formats or 'unknown'}: the images tensor says "
            f"{compression}; links keep each object as it is"
        )
    with ds:
        if link:
            ds.create_tensor(
                "images",
                htype="link[image]",
                sample_compression=compression,
                verify=decode,
                create_shape_tensor=decode,
                create_sample_info_tensor=decode,
            )
        else:
            ds.create_tensor("images", htype="image", sample_compression=compression)
        ds.create_tensor("titles", htype="text")
        ds.create_tensor("metadata", htype="json")
        common = _common_keys(found.metadata)
        for key, dtype in common.items():
            if not _NAME.match(key):
                continue
            name = f"{META_GROUP}/{key}"
            if dtype == "str":
                ds.create_tensor(name, htype="text")
            else:
                ds.create_tensor(name, htype="generic", dtype=dtype)
        ds.create_tensor(SOURCES_TENSOR, htype="text", hidden=True)
    skipped = sorted(k for k in common if not _NAME.match(k))
    if skipped:
        report.notes.append(f"metadata keys that are no tensor names, kept in metadata: {skipped}")


_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")

_ARN_UNSUPPORTED = (
    "an S3 Multi-Region Access Point ARN is a valid manifest URL, but tensorlake cannot "
    "open one yet (links take s3://, http(s):// and local paths)"
)


def _scalar_type(value: Any) -> str | None:
    if isinstance(value, str):
        return "str"
    for kind, dtype in _SCALARS:  # bool first: a bool is an int too
        if isinstance(value, kind):
            return dtype
    return None


def _common_keys(metadata: Iterable[dict[str, Any]]) -> dict[str, str]:
    """The keys every row has with one scalar type, and that type."""
    common: dict[str, str] | None = None
    for meta in metadata:
        types = {k: t for k, v in meta.items() if (t := _scalar_type(v)) is not None}
        if common is None:
            common = types
        else:
            common = {k: t for k, t in common.items() if types.get(k) == t}
        if not common:
            return {}
    return common or {}


def _fits(value: Any, dtype: str) -> bool:
    return value is not None and _scalar_type(value) == dtype


def _typed_tensors(ds: Dataset) -> dict[str, tuple[str, str]]:
    """The dataset's ``meta/<key>`` tensors: name -> (key, dtype or "str")."""
    out = {}
    for name, tensor in ds.tensors.items():
        if name.startswith(META_GROUP + "/"):
            dtype = "str" if tensor.htype == "text" else str(tensor.dtype)
            out[name] = (name[len(META_GROUP) + 1 :], dtype)
    return out


def _missing(ds: Dataset, urls: list[str]) -> list[str]:
    """The URLs the rows do not hold: those that failed (``ignore_errors``)."""
    recorded = held(ds, SOURCES_TENSOR)
    return [u for u in urls if u not in recorded]
