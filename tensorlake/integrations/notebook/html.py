"""HTML views of datasets, views, groups and tensors, for ``_repr_html_``.

The table of tensors is made from the manifest alone (no chunk is read), so it renders
in milliseconds however large the dataset. Below it, a preview of the first rows
(``TENSORLAKE_HTML_PREVIEW`` rows, 4 by default, 0 for none) reads those rows: image
thumbnails as data URIs, class names, box counts, text and json abbreviated. Every
string that comes from the user (names, class names, text, paths, messages) is escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any

import numpy as np
from PIL import Image

from tensorlake import config
from tensorlake.api.dataset import Dataset, core_of, rows_of
from tensorlake.api.tensor import Tensor
from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.htypes.registry import get_htype
from tensorlake.errors import TensorlakeError

__all__ = ["dataset_html", "tensor_html", "thumbnail_uri"]

STYLE = (
    "<style>.tl-view{font-family:sans-serif;font-size:13px}"
    ".tl-view table{border-collapse:collapse;margin:4px 0}"
    ".tl-view th,.tl-view td{border:1px solid #ddd;padding:2px 6px;text-align:left;"
    "vertical-align:top}.tl-view th{background:#f4f4f4}.tl-view .tl-muted{color:#777}"
    ".tl-view img{display:block}</style>"
)
CLASS_NAMES_SHOWN = 5
TEXT_SHOWN = 60
THUMBNAIL = 96
SMALL_VALUES = 6  # arrays up to this size show their values


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _shape(meta: TensorMeta, rows: int) -> str:
    if meta.min_shape is None or meta.max_shape is None:
        return f"({rows},)"
    dims = [str(a) if a == b else "None" for a, b in zip(meta.min_shape, meta.max_shape)]
    return "(" + ", ".join([str(rows), *dims]) + ")"


def _classes(meta: TensorMeta) -> str:
    names = meta.info.get("class_names") or []
    if not names:
        return ""
    shown = ", ".join(str(n) for n in names[:CLASS_NAMES_SHOWN])
    more = f", … ({len(names)} in all)" if len(names) > CLASS_NAMES_SHOWN else ""
    return shown + more


def _rows_text(ds: Dataset) -> str:
    """Which rows a view selects, in words."""
    rows = rows_of(ds)
    if rows is None or not ds.is_view:
        return ""
    if not len(rows):
        return "no rows"
    if len(rows) > 1 and bool(np.all(np.diff(rows) == 1)):
        return f"rows {int(rows[0])}..{int(rows[-1])}"
    head = ", ".join(str(int(r)) for r in rows[:8])
    return f"rows [{head}{', …' if len(rows) > 8 else ''}]"


def _tensor_rows(ds: Dataset) -> list[str]:
    core = core_of(ds)
    out = []
    for name, tensor in sorted(ds.tensors.items()):
        meta = core.engine(tensor.key).meta
        rows = core.engine(tensor.key).num_rows
        compression = meta.sample_compression or meta.chunk_compression or ""
        indent = name.count("/")
        label = ("&nbsp;&nbsp;" * indent) + _e(name)
        cells = [
            label,
            _e(meta.htype),
            _e(meta.dtype or ""),
            _e(_shape(meta, rows)),
            _e(compression),
            _e(rows),
            _e(_classes(meta)),
        ]
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return out


def dataset_html(ds: Dataset, preview: int | None = None) -> str:
    """The HTML view of a dataset, view or group: where it is, its version, its rows,
    its tensors (from the manifest), then a preview of its first rows."""
    core = core_of(ds)
    kind = "View" if ds.is_view else ("Group" if ds.group_index else "Dataset")
    facts = [
        f"<b>{kind}</b> <code>{_e(ds.path)}</code>",
        f"branch <code>{_e(ds.branch)}</code>",
        f"commit <code>{_e(ds.commit_id[:12])}</code>",
    ]
    if core.detached:
        facts.append("a past commit")
    if ds.read_only:
        facts.append("read-only")
    if ds.group_index:
        facts.append(f"group <code>{_e(ds.group_index)}</code>")
    length = f"{len(ds):,} rows"
    if not ds.is_view and ds.max_len != ds.min_len:
        length += f" (max_len {ds.max_len:,})"
    facts.append(length)
    rows_text = _rows_text(ds)
    if rows_text:
        facts.append(_e(rows_text))
    head = (
        "<tr>"
        + "".join(
            f"<th>{h}</th>"
            for h in ("tensor", "htype", "dtype", "shape", "compression", "rows", "classes")
        )
        + "</tr>"
    )
    body = _tensor_rows(ds)
    table = (
        f"<table class='tl-tensors'><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"
        if body
        else "<p class='tl-muted'>no tensors</p>"
    )
    parts = [STYLE, "<div class='tl-view'>", "<div>" + " · ".join(facts) + "</div>", table]
    shown = config.html_preview_rows() if preview is None else preview
    if shown and body and len(ds):
        parts.append(_preview(ds, shown))
    parts.append("</div>")
    return "".join(parts)


def tensor_html(t: Tensor) -> str:
    """The HTML view of a tensor or a view of it (its meta only)."""
    meta = t.meta
    rows = len(t)
    facts = [
        f"<b>Tensor</b> <code>{_e(t.key)}</code>",
        f"htype <code>{_e(meta.htype)}</code>",
        f"dtype <code>{_e(meta.dtype or '')}</code>",
        f"shape <code>{_e(_shape(meta, t.num_samples))}</code>",
        f"{rows:,} rows" + ("" if rows == t.num_samples else f" of {t.num_samples:,}"),
    ]
    compression = meta.sample_compression or meta.chunk_compression
    if compression:
        facts.append(f"compression <code>{_e(compression)}</code>")
    classes = _classes(meta)
    if classes:
        facts.append(f"classes {_e(classes)}")
    return STYLE + "<div class='tl-view'>" + " · ".join(facts) + "</div>"


# -- the preview of the first rows ------------------------------------------------------


def _preview(ds: Dataset, rows: int) -> str:
    view = ds[0 : min(rows, len(ds))]
    names = sorted(view.tensors)
    head = "<tr><th>row</th>" + "".join(f"<th>{_e(n)}</th>" for n in names) + "</tr>"
    columns = {name: _column(view.tensors[name]) for name in names}
    indices = rows_of(view)
    assert indices is not None
    body = []
    for k, row in enumerate(indices.tolist()):
        cells = "".join(f"<td>{columns[name][k]}</td>" for name in names)
        body.append(f"<tr><td>{row}</td>{cells}</tr>")
    return f"<table class='tl-preview'><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"


def _column(t: Tensor) -> list[str]:
    """Each row of ``t`` as the HTML of one preview cell (an error shows in its cell)."""
    n = len(t)
    try:
        values = t.numpy(aslist=True)
    except TensorlakeError as err:
        return [f"<span class='tl-muted'>{_e(type(err).__name__)}</span>"] * n
    htype = get_htype(t.meta.htype)
    return [_cell(t.meta, htype, v) for v in values]


def _cell(meta: TensorMeta, htype: Any, value: Any) -> str:
    base = meta.htype.split("[")[-1].rstrip("]").split(".")[0]
    if base == "image" and isinstance(value, np.ndarray) and value.ndim == 3 and value.size:
        return f"<img src='{thumbnail_uri(value)}' alt='image {value.shape}'>"
    if meta.htype == "class_label":
        names = meta.info.get("class_names") or []
        ids = np.asarray(value).reshape(-1).tolist()
        labels = [names[i] if 0 <= i < len(names) else str(i) for i in ids]
        return _e(_short(", ".join(labels)))
    if meta.htype == "bbox":
        return _e(f"{len(value)} boxes")
    if meta.htype == "text":
        return _e(_short(str(value)))
    if meta.htype == "json":
        return _e(_short(json.dumps(value, default=str)))
    arr = np.asarray(value)
    if meta.htype == "binary_mask" and arr.ndim == 3:
        return _e(f"{arr.shape[2]} masks {arr.shape[0]}x{arr.shape[1]}")
    if arr.size <= SMALL_VALUES and arr.dtype.kind in "biuf":
        values = (
            np.round(arr, 3).reshape(-1).tolist()
            if arr.dtype.kind == "f"
            else arr.reshape(-1).tolist()
        )
        return _e(values[0] if arr.ndim == 0 else values)
    return _e(f"{arr.dtype} {tuple(arr.shape)}")


def _short(text: str) -> str:
    return text if len(text) <= TEXT_SHOWN else text[: TEXT_SHOWN - 1] + "…"


def thumbnail_uri(image: np.ndarray, size: int = THUMBNAIL) -> str:
    """A downscaled JPEG of ``image`` (H, W, C uint8) as a data URI."""
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image[..., :3])
    pil.thumbnail((size, size))
    buf = io.BytesIO()
    pil.convert("RGB").save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
