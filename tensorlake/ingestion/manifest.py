"""``ingest_manifest``: register cloud objects listed in a JSON or CSV manifest (Encord's
registration files) as a dataset of ``link[image]`` rows, in one call.

The manifest is read and checked whole before anything is written: its limits
(``MAX_URLS``, ``MAX_ITEMS``, ``MAX_URL_BYTES``; module constants, read at each call),
URLs without whitespace and of a known kind (``s3://``, ``http(s)://``, ``file://`` or a
local path, an S3 Multi-Region Access Point ARN followed by the object name), duplicates.
Each rejected row is reported with where it is (``images[3]`` in JSON, ``line 7`` in
CSV) and why. Data types tensorlake cannot decode (videos, DICOM, image groups ...) are
reported as rejected for that reason, never dropped silently.

JSON: ``{"images": [{"objectUrl": ..., "title": ..., "clientMetadata": {...}}], "videos":
[...], "image_groups": [{"title": ..., "objectUrl_0": ..., "objectUrl_1": ...}], ...,
"skip_duplicate_urls": true}``. CSV: the headers name the data type (``Image URL``,
``Video URL``, ``Image group URL``, ``Image sequence URL``, ``DICOM URL``, each with its
``... title`` column), ``Client metadata`` holds a JSON object; a single ``ObjectUrl``
column means videos (Encord's backwards-compatible form), and ``ObjectUrl`` is read as
``Video URL`` beside other columns too.

Tensors: ``images`` (``link[image]``, or the copied bytes with ``link=False``),
``titles`` (text), ``metadata`` (json: each row's ``clientMetadata``), ``meta/<key>`` for
each metadata key that every row of the first ingest has with one scalar type, and the
hidden ``_sources`` (each row's URL as the manifest wrote it), which makes
``skip_duplicate_urls`` skip URLs the dataset already holds.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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
from tensorlake.ingestion.run import SHOWN, IngestReport, open_dest, run_transform

__all__ = [
    "CSV_COLUMNS",
    "DATA_TYPES",
    "MAX_ITEMS",
    "MAX_URLS",
    "MAX_URL_BYTES",
    "META_GROUP",
    "SOURCES_TENSOR",
    "Manifest",
    "Rejection",
    "ingest_manifest",
    "read_manifest",
]

MAX_URLS = 1_000_000
"""URLs a manifest may hold (each ``objectUrl``, and each ``objectUrl_N`` of a group)."""

MAX_ITEMS = 500_000
"""Items (images, videos, image groups, DICOM series ...) a manifest may hold."""

MAX_URL_BYTES = 16 * 1024
"""The longest URL, in UTF-8 bytes."""

DATA_TYPES = (
    "images",
    "videos",
    "image_groups",
    "image_sequences",
    "dicom_series",
    "nifti",
    "audio",
    "text",
    "pdf",
)
"""The manifest's lists of items; only ``images`` become rows."""

CSV_COLUMNS = {  # header (lower case) -> (data type, "url" or "title")
    "image url": ("images", "url"),
    "image title": ("images", "title"),
    "objecturl": ("videos", "url"),
    "video url": ("videos", "url"),
    "video title": ("videos", "title"),
    "image group url": ("image_groups", "url"),
    "image group title": ("image_groups", "title"),
    "image sequence url": ("image_sequences", "url"),
    "image sequence title": ("image_sequences", "title"),
    "dicom url": ("dicom_series", "url"),
    "dicom series title": ("dicom_series", "title"),
}
"""CSV headers (matched ignoring case and surrounding spaces) and what each holds; the
``Client metadata`` (or ``clientMetadata``) column holds a JSON object."""

SOURCES_TENSOR = "_sources"
"""The hidden text tensor holding each row's URL, as the manifest wrote it."""

META_GROUP = "meta"
"""The group of the typed tensors, one per metadata key (``meta/<key>``)."""

BATCH = 64
"""Rows per input item of the transform (appending a batch costs a fraction of appending
rows one by one); 1 with ``verify="decode"``, so a bad object costs only its own row."""

_METADATA_COLUMNS = ("client metadata", "clientmetadata")
_WHITESPACE = re.compile(r"\s")
_MRAP = re.compile(r"arn:aws:s3::\d{12}:accesspoint/[A-Za-z0-9.-]+\.mrap/.")
_KNOWN_SCHEMES = ("s3", "http", "https", "file")
_PLAIN_URL = re.compile(r"(?:[sS]3|[hH][tT][tT][pP][sS]?)://[^/?#\s]+[/?#]\S*\Z")
_URL_KEY = re.compile(r"objectUrl(_\d+)?$")
_SCALARS: tuple[tuple[type, str], ...] = ((bool, "bool"), (int, "int64"), (float, "float64"))


@dataclass(frozen=True, slots=True)
class Rejection:
    """A row of the manifest that is not ingested: where it is and why."""

    where: str  # "images[3]" (JSON) or "line 7" (CSV)
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(slots=True)
class Manifest:
    """A manifest read and checked: the image rows to ingest, in manifest order, and what
    was rejected or skipped."""

    source: str
    urls: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # each row's index or line number
    row_format: str = "images[{}]"  # a row's location from its number ("line {}" in CSV)
    rejected: list[Rejection] = field(default_factory=list)  # bad rows
    unsupported: list[Rejection] = field(default_factory=list)  # data types not decoded
    duplicates: list[Rejection] = field(default_factory=list)  # skipped (skip_duplicate_urls)
    items: int = 0  # every item, of every type
    skip_duplicate_urls: bool = False  # the manifest's own key

    def __len__(self) -> int:
        return len(self.urls)

    def location(self, i: int) -> str:
        """Where row ``i`` (an index into the lists) is in the manifest."""
        return self.row_format.format(self.rows[i])

    def keep(self, rows: Sequence[int]) -> None:
        """Keep only ``rows`` (indices into the lists), in their order."""
        for name in ("urls", "titles", "metadata", "rows"):
            values = getattr(self, name)
            setattr(self, name, [values[i] for i in rows])


# -- reading ---------------------------------------------------------------------------
def read_manifest(
    manifest: str | os.PathLike[str],
    skip_duplicate_urls: bool = False,
    src_creds: dict[str, Any] | None = None,
) -> Manifest:
    """Read and check a JSON or CSV manifest (a local path, ``s3://`` or ``http(s)://``)
    without writing anything: the image rows, and every rejected row with its reason.

    Example::

        found = read_manifest("s3://labels/register.json")
        print(len(found), [str(r) for r in found.rejected[:5]])
    """
    where = os.fspath(manifest)
    data = _read_bytes(where, src_creds)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lower = where.lower()
    is_json = lower.endswith(".json") or (
        not lower.endswith(".csv") and data.lstrip()[:1] in (b"{", b"[")
    )
    out = Manifest(where)
    try:
        if is_json:
            _read_json(data, out)
        else:
            out.row_format = "line {}"
            _read_csv(data.decode("utf-8"), out)
    except UnicodeDecodeError as err:
        before = data[: err.start].decode("utf-8", "replace")
        line = before.count("\n") + 1
        col = len(before) - (before.rfind("\n") + 1) + 1
        raise IngestError(
            f"{where} is not UTF-8 text (line {line}, column {col}): {err.reason}."
        ) from None
    del data
    _check_rows(out, skip_duplicate_urls or out.skip_duplicate_urls)
    return out


def _read_bytes(where: str, creds: dict[str, Any] | None) -> bytes:
    scheme = urllib.parse.urlsplit(where).scheme.lower()
    try:
        if scheme in ("s3", "http", "https"):  # read as a link is: a presigned URL works
            resolver = LinkResolver(["manifest"])
            resolver.set_creds("manifest", creds if scheme == "s3" else None)
            return resolver.fetch(LinkedSample(where, "manifest"))[0]
        path = where[len("file://") :] if scheme == "file" else where
        with open(os.path.expanduser(path), "rb") as f:
            return f.read()
    except (OSError, StorageError, SampleError) as err:
        raise IngestError(f"Cannot read the manifest {where}: {err}") from err


def _read_json(data: bytes, out: Manifest) -> None:
    try:
        doc = json.loads(data)
    except json.JSONDecodeError as err:
        raise IngestError(
            f"{out.source} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}."
        ) from None
    if not isinstance(doc, dict):
        raise IngestError(
            f"{out.source}: a JSON manifest is an object of item lists "
            '({"images": [{"objectUrl": ...}], ...}), got ' + type(doc).__name__ + "."
        )
    skip = doc.get("skip_duplicate_urls", False)
    if not isinstance(skip, bool):
        raise IngestError(f"{out.source}: skip_duplicate_urls must be true or false.")
    out.skip_duplicate_urls = skip
    unknown = sorted(k for k in doc if k not in DATA_TYPES and k != "skip_duplicate_urls")
    if unknown:
        raise IngestError(
            f"{out.source}: unknown keys {unknown}; a manifest holds {list(DATA_TYPES)} "
            "and skip_duplicate_urls."
        )
    lists = {kind: doc.get(kind) or [] for kind in DATA_TYPES}
    for kind, items in lists.items():
        if not isinstance(items, list):
            raise IngestError(f"{out.source}: '{kind}' must be a list of items.")
    _check_counts(out, lists)
    images = lists["images"]
    for i, item in enumerate(images):
        images[i] = None  # each item freed once read: the lists grow as the document shrinks
        if type(item) is dict:
            _add(out, i, item.get("objectUrl"), item.get("title"), item.get("clientMetadata"))
        else:
            out.rejected.append(Rejection(f"images[{i}]", "the item is not an object"))
    for kind in DATA_TYPES[1:]:
        for i in range(len(lists[kind])):
            out.unsupported.append(Rejection(f"{kind}[{i}]", _unsupported(kind)))


def _check_counts(out: Manifest, lists: dict[str, list[Any]]) -> None:
    out.items = sum(len(items) for items in lists.values())
    if out.items > MAX_ITEMS:
        raise IngestError(
            f"{out.source} holds {out.items:,} items; a manifest may hold {MAX_ITEMS:,}. "
            "Split it into several manifests, ingested one after another into the same dataset."
        )
    urls = (
        len(lists["images"])
        + sum(  # an image has one URL (a bad item counts as one)
            sum(1 for k in item if _URL_KEY.match(k)) if isinstance(item, dict) else 1
            for kind in DATA_TYPES[1:]
            for item in lists[kind]
        )
    )
    if urls > MAX_URLS:
        raise IngestError(
            f"{out.source} holds {urls:,} URLs; a manifest may hold {MAX_URLS:,}. Split it "
            "into several manifests, ingested one after another into the same dataset."
        )


def _unsupported(kind: str) -> str:
    return f"tensorlake cannot decode {kind.replace('_', ' ')}: only images become rows"


def _read_csv(text: str, out: Manifest) -> None:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as err:
        raise _csv_error(out, text, 0, err) from None
    if not header:
        raise IngestError(f"{out.source}: the CSV file is empty (it needs a header row).")
    columns = [h.strip().lower() for h in header]
    unknown = [
        h for h, c in zip(header, columns) if c not in CSV_COLUMNS and c not in _METADATA_COLUMNS
    ]
    if unknown:
        raise IngestError(
            f"{out.source}: unknown CSV columns {unknown} (line 1); known columns: "
            f"{sorted({*CSV_COLUMNS, *_METADATA_COLUMNS})} (any case)."
        )
    url_cols = [
        (i, CSV_COLUMNS[c][0])
        for i, c in enumerate(columns)
        if CSV_COLUMNS.get(c, ("", ""))[1] == "url"
    ]
    if not url_cols:
        raise IngestError(f"{out.source}: the CSV header (line 1) has no URL column.")
    title_of = {
        CSV_COLUMNS[c][0]: i
        for i, c in enumerate(columns)
        if CSV_COLUMNS.get(c, ("", ""))[1] == "title"
    }
    meta_col = next((i for i, c in enumerate(columns) if c in _METADATA_COLUMNS), None)
    rows: list[tuple[int, str, list[str]]] = []  # line, data type, fields
    counts = dict.fromkeys(DATA_TYPES, 0)
    while True:
        start = reader.line_num
        try:
            fields = next(reader, None)
        except csv.Error as err:
            raise _csv_error(out, text, start, err) from None
        if fields is None:
            break
        line = start + 1
        if not any(f.strip() for f in fields):
            continue  # a blank line
        if len(fields) != len(header):
            col = len(",".join(fields[: len(header)])) + 1 if len(fields) > len(header) else 1
            raise IngestError(
                f"{out.source} is not a valid CSV manifest: {len(fields)} fields where the "
                f"header has {len(header)}, at line {line}, column {col}."
            )
        kinds = [kind for i, kind in url_cols if fields[i].strip()]
        if len(kinds) != 1:
            reason = "no URL" if not kinds else f"URLs of several data types ({kinds})"
            out.rejected.append(Rejection(f"line {line}", reason))
            continue
        counts[kinds[0]] += 1
        rows.append((line, kinds[0], fields))
    _check_counts(out, {kind: [{"objectUrl": ""}] * n for kind, n in counts.items()})
    url_col = dict((kind, i) for i, kind in url_cols)
    for line, kind, fields in rows:
        where = f"line {line}"
        if kind != "images":
            out.unsupported.append(Rejection(where, _unsupported(kind)))
            continue
        title = fields[title_of["images"]] if "images" in title_of else None
        meta: Any = None
        if meta_col is not None and fields[meta_col].strip():
            try:
                meta = json.loads(fields[meta_col])
            except json.JSONDecodeError as err:
                out.rejected.append(Rejection(where, f"client metadata is not JSON: {err.msg}"))
                continue
        _add(out, line, fields[url_col[kind]].strip(), title, meta)


def _csv_error(out: Manifest, text: str, start: int, err: csv.Error) -> IngestError:
    """Where the record that began after line ``start`` went wrong: its first quote."""
    line = start + 1
    lines = text.splitlines()
    col = (lines[start].find('"') + 1 or 1) if start < len(lines) else 1
    return IngestError(f"{out.source} is not valid CSV: {err} at line {line}, column {col}.")


def _add(out: Manifest, row: int, url: Any, title: Any, meta: Any) -> None:
    reason = _url_problem(url)
    if reason is None and title is not None and not isinstance(title, str):
        reason = "title is not a string"
    if reason is None and meta is not None and not isinstance(meta, dict):
        reason = "clientMetadata is not an object"
    if reason is not None:
        out.rejected.append(Rejection(out.row_format.format(row), reason))
        return
    out.urls.append(url)
    out.titles.append(title or "")
    out.metadata.append(meta or {})
    out.rows.append(row)


def _url_problem(url: Any) -> str | None:
    """Why ``url`` cannot be registered, or None."""
    if type(url) is not str or not url:
        return "no objectUrl" if url is None else "objectUrl is not a non-empty string"
    if len(url) * 4 > MAX_URL_BYTES and len(url.encode("utf-8")) > MAX_URL_BYTES:
        return f"the URL has {len(url.encode('utf-8')):,} bytes; at most {MAX_URL_BYTES:,}"
    if _PLAIN_URL.match(url):  # the common case, in one regex
        return None
    if _WHITESPACE.search(url):
        return "the URL contains whitespace"
    head, sep, _ = url.partition("://")
    if sep and "/" not in head:
        scheme = head.lower()
        if scheme not in _KNOWN_SCHEMES:
            return f"unknown URL scheme {head!r}: use s3://, http(s)://, file:// or a local path"
        if scheme != "file" and not urllib.parse.urlsplit(url).netloc:
            return "the URL names no bucket or host"
        return None
    if url.startswith("arn:"):
        if _MRAP.match(url):
            return None
        return "an ARN must be an S3 Multi-Region Access Point's followed by the object name"
    if ":" in url.split("/", 1)[0] and not (len(url) > 1 and url[1] == ":"):
        return f"unknown URL scheme in {url[:40]!r}: use s3://, http(s)://, file:// or a local path"
    return None


def _check_rows(out: Manifest, skip_duplicates: bool) -> None:
    """Repeated URLs: skipped with ``skip_duplicates``, else rejected rows."""
    first: dict[str, int] = {}
    keep: list[int] = []
    for i, url in enumerate(out.urls):
        j = first.setdefault(url, i)
        if j == i:
            keep.append(i)
        elif skip_duplicates:
            out.duplicates.append(
                Rejection(out.location(i), f"repeats the URL of {out.location(j)}")
            )
        else:
            out.rejected.append(Rejection(out.location(i), f"repeats the URL of {out.location(j)}"))
    if len(keep) < len(out.urls):
        out.keep(keep)


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
def manifest_rows(batch: tuple[int, int], sample_out: Any, plan: _Plan) -> None:
    """Rows ``start:stop`` of the manifest -> rows of every tensor."""
    rows: dict[str, list[Any]] = {"images": [], "titles": [], "metadata": [], SOURCES_TENSOR: []}
    for name in plan.typed:
        rows[name] = []
    start, stop = batch
    found = plan.found
    for url, title, meta in zip(
        found.urls[start:stop], found.titles[start:stop], found.metadata[start:stop]
    ):
        if plan.link:  # an s3:// or http(s):// URL is a link as it is
            image: Any = (
                LinkedSample(url, plan.creds_key)
                if _PLAIN_URL.match(url)
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
        _check_schema(ds)
    typed = _typed_tensors(ds)
    held = set(ds[SOURCES_TENSOR].numpy(aslist=True)) if len(ds[SOURCES_TENSOR]) else set()
    keep = []
    for i, (url, meta) in enumerate(zip(found.urls, found.metadata)):
        if url in held:
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
        if creds_key not in ds.get_creds_keys():
            ds.add_creds_key(creds_key)
        if src_creds:
            ds.populate_creds(creds_key, src_creds)
    plan = _Plan(
        link,
        creds_key if link else object_key,
        None if link else resolver,
        typed,
        ignore_errors,
        found,
    )
    size = 1 if verify == "decode" or not link else BATCH
    n = len(found.urls)
    batches = [(i, min(n, i + size)) for i in range(0, n, size)]
    run_transform(
        manifest_rows(plan=plan),
        batches,
        ds,
        created,
        report,
        num_workers=num_workers,
        checkpoint_interval=-(-checkpoint_interval // size),
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
    """A HEAD per object (bounded concurrency): missing or empty objects are rejected."""

    def problem(url: str) -> str | None:
        try:
            info = resolver.info(make_link(url, creds_key=creds_key))
        except KeyNotFoundError:
            return "the object does not exist"
        except (TensorlakeError, OSError, ValueError) as err:
            return f"the object cannot be checked: {err}"
        return "the object is empty" if info.size == 0 else None

    problems = resolver.map_concurrently(problem, found.urls)
    keep = []
    for i, reason in enumerate(problems):
        if reason is None:
            keep.append(i)
        else:
            found.rejected.append(Rejection(found.location(i), reason))
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


def _check_schema(ds: Dataset) -> None:
    missing = [n for n in ("images", "titles", "metadata", SOURCES_TENSOR) if not _has(ds, n)]
    if missing:
        raise IngestError(
            f"The dataset at {ds.path} has no tensors {missing}: it was not made by "
            "ingest_manifest. Pass overwrite=True to replace it, or another dest."
        )


def _has(ds: Dataset, name: str) -> bool:
    try:
        ds[name]
    except KeyError:
        return False
    return True


def _missing(ds: Dataset, urls: list[str]) -> list[str]:
    """The URLs the rows do not hold: those that failed (``ignore_errors``)."""
    held = set(ds[SOURCES_TENSOR].numpy(aslist=True))
    return [u for u in urls if u not in held]
