"""Reading registration manifests (Encord's JSON and CSV): parsed and checked whole,
before anything is written.

The limits (``MAX_URLS``, ``MAX_ITEMS``, ``MAX_URL_BYTES``; module constants, read at
each call), URLs without whitespace and of a known kind (``s3://``, ``http(s)://``,
``file://`` or a local path, an S3 Multi-Region Access Point ARN followed by the object
name), duplicates. Each rejected row is reported with where it is (``images[3]`` in
JSON, ``line 7`` in CSV) and why; data types tensorlake cannot decode (videos, DICOM,
image groups ...) are reported for that reason, never dropped silently.

JSON: ``{"images": [{"objectUrl": ..., "title": ..., "clientMetadata": {...}}], "videos":
[...], "image_groups": [{"title": ..., "objectUrl_0": ..., "objectUrl_1": ...}], ...,
"skip_duplicate_urls": true}``. CSV: the headers name the data type (``Image URL``,
``Video URL``, ``Image group URL``, ``Image sequence URL``, ``DICOM URL``, each with its
``... title`` column), ``Client metadata`` holds a JSON object; a single ``ObjectUrl``
column means videos (Encord's backwards-compatible form), and ``ObjectUrl`` is read as
``Video URL`` beside other columns too.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tensorlake.engine.links.resolver import LinkResolver
from tensorlake.engine.links.sample import LinkedSample
from tensorlake.errors import IngestError, SampleError, StorageError

__all__ = [
    "CSV_COLUMNS",
    "DATA_TYPES",
    "MAX_ITEMS",
    "MAX_URLS",
    "MAX_URL_BYTES",
    "PLAIN_URL",
    "Manifest",
    "Rejection",
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

_METADATA_COLUMNS = ("client metadata", "clientmetadata")
_WHITESPACE = re.compile(r"\s")
_MRAP = re.compile(r"arn:aws:s3::\d{12}:accesspoint/[A-Za-z0-9.-]+\.mrap/.")
_KNOWN_SCHEMES = ("s3", "http", "https", "file")
PLAIN_URL = re.compile(  # an s3:// or http(s):// URL that tl.link would keep as it is
    r"(?:[sS]3|[hH][tT][tT][pP][sS]?)://[^/?#\s]+[/?#]\S*\Z"
)
_URL_KEY = re.compile(r"objectUrl(_\d+)?$")


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
    if PLAIN_URL.match(url):  # the common case, in one regex
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
