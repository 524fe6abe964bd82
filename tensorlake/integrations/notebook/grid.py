"""``ds.visualize()``: a grid of a view's images with what the htypes say drawn on them.

Local and offline (Pillow only): each cell is one row's image, downscaled to fit
``size``, with its binary masks tinted per instance, its boxes in the tensor's coords
with their class names, its keypoints and skeleton, and the row index under it. Linked
images are fetched concurrently; one that cannot be read becomes a marked placeholder
cell, never an exception.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tensorlake.api.dataset import Dataset, rows_of
from tensorlake.errors import DatasetArgumentError, DatasetError, TensorlakeError
from tensorlake.integrations.notebook.draw import (
    PALETTE,
    boxes_to_ltrb,
    colour,
    draw_boxes,
    draw_keypoints,
    placeholder,
    tint_masks,
)

__all__ = ["Grid", "visualize"]

CAPTION = 16  # pixels under each cell for the row index (and labels)
GAP = 4
IMAGE_HTYPES = ("image", "image.rgb", "image.gray", "link[image]")


@dataclass
class Grid:
    """What ``ds.visualize()`` returns: it renders in a notebook (``_repr_png_``,
    ``_repr_html_``), ``save("grid.png")`` writes it, ``image`` is the PIL image."""

    image: Image.Image
    rows: list[int]

    def save(self, path: Any, **kwargs: Any) -> None:
        self.image.save(path, **kwargs)

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.image.save(buf, format="PNG")
        return buf.getvalue()

    def _repr_html_(self) -> str:
        data = base64.b64encode(self._repr_png_()).decode("ascii")
        w, h = self.image.size
        return f"<img src='data:image/png;base64,{data}' width='{w}' height='{h}' alt='grid'>"


def _pick(ds: Dataset, wanted: Any, htypes: tuple[str, ...], what: str) -> str | None:
    """The tensor to draw as ``what``: the one named, the first of ``htypes`` when
    ``wanted`` is None or True, none when it is False."""
    if wanted is False:
        return None
    tensors = ds.tensors
    if isinstance(wanted, str):
        if wanted not in tensors:
            raise DatasetError(f"visualize({what}={wanted!r}): no such tensor; {sorted(tensors)}.")
        return wanted
    found = next((n for n, t in tensors.items() if t.htype in htypes), None)
    if found is None and wanted is True:
        raise DatasetError(f"visualize({what}=True): the dataset has no {'/'.join(htypes)} tensor.")
    return found


def visualize(
    ds: Dataset,
    tensors: str | list[str] | None = None,
    cols: int = 4,
    size: int = 256,
    boxes: Any = None,
    masks: Any = None,
    labels: Any = None,
    keypoints: Any = None,
    limit: int = 64,
) -> Grid:
    """The grid of the first ``limit`` rows of ``ds`` (a dataset or view)."""
    if not isinstance(cols, int) or cols < 1 or not isinstance(size, int) or size < 16:
        raise DatasetArgumentError(
            f"cols must be >= 1 and size >= 16, got cols={cols!r}, size={size!r}."
        )
    image_name = tensors if isinstance(tensors, str) else (tensors[0] if tensors else None)
    image_name = _pick(ds, image_name or True, IMAGE_HTYPES, "tensors")
    assert image_name is not None
    box_name = _pick(ds, boxes, ("bbox",), "boxes")
    mask_name = _pick(ds, masks, ("binary_mask",), "masks")
    label_name = _pick(ds, labels, ("class_label",), "labels")
    kp_name = _pick(ds, keypoints, ("keypoints_coco",), "keypoints")
    if rows_of(ds) is None:
        raise DatasetError("visualize() draws a view of rows; ds[i] is one row: use ds[i:i+1].")
    view = ds[0 : min(limit, len(ds))]
    rows = rows_of(view)
    assert rows is not None
    images = _images(view, image_name)
    columns = {
        name: _values(view, name) for name in (box_name, mask_name, label_name, kp_name) if name
    }
    tensors_of = view.tensors
    coords = tensors_of[box_name].meta.info.get("coords", {}) if box_name else {}
    class_names = tensors_of[label_name].meta.info.get("class_names", []) if label_name else []
    connections = tensors_of[kp_name].meta.info.get("connections", []) if kp_name else []
    cells = []
    for k, row in enumerate(rows.tolist()):
        image = images[k]
        if not isinstance(image, np.ndarray):
            cells.append(_captioned(placeholder(size, "missing"), f"{row}: {image}", size))
            continue
        cells.append(
            _cell(
                image,
                row,
                size,
                columns.get(box_name)[k] if box_name else None,  # type: ignore[index]
                columns.get(mask_name)[k] if mask_name else None,  # type: ignore[index]
                columns.get(label_name)[k] if label_name else None,  # type: ignore[index]
                columns.get(kp_name)[k] if kp_name else None,  # type: ignore[index]
                coords,
                class_names,
                connections,
            )
        )
    return Grid(_compose(cells, cols, size), rows.tolist())


def _values(view: Dataset, name: str) -> list[Any]:
    try:
        return list(view[name].numpy(aslist=True))
    except TensorlakeError:  # a bad row spoils only its own cell
        out = []
        for i in range(len(view)):
            try:
                out.append(view[i][name].numpy())
            except TensorlakeError:
                out.append(None)
        return out


def _images(view: Dataset, name: str) -> list[Any]:
    """Each row's image, or a short reason where it cannot be read (a missing link)."""
    try:
        return list(view[name].numpy(aslist=True))
    except TensorlakeError:
        out: list[Any] = []
        for i in range(len(view)):
            try:
                out.append(view[i][name].numpy())
            except TensorlakeError as err:
                out.append(type(err).__name__)
        return out


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8, copy=False)


def _cell(
    image: np.ndarray,
    row: int,
    size: int,
    boxes: Any,
    masks: Any,
    labels: Any,
    keypoints: Any,
    coords: dict,
    class_names: list[str],
    connections: list,
) -> Image.Image:
    rgb = _rgb(image)
    height, width = rgb.shape[:2]
    ids = [] if labels is None else np.asarray(labels).reshape(-1).astype(np.int64).tolist()
    n_boxes = 0 if boxes is None else len(np.asarray(boxes).reshape(-1, 4))
    per_box = n_boxes > 0 and len(ids) == n_boxes
    colours = [colour(i) for i in ids] if per_box else list(PALETTE)
    if masks is not None and np.asarray(masks).ndim >= 2:
        m = np.asarray(masks, dtype=bool)
        instances = m.shape[-1] if m.ndim == 3 else 1
        mask_colours = (
            colours if len(colours) >= instances else [PALETTE[k % 20] for k in range(instances)]
        )
        rgb = tint_masks(rgb, m, mask_colours)
    scale = size / max(height, width)
    out_w, out_h = max(1, round(width * scale)), max(1, round(height * scale))
    pil = Image.fromarray(rgb).resize((out_w, out_h), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(pil)
    if n_boxes:
        ltrb = boxes_to_ltrb(np.asarray(boxes), coords, width, height) * scale
        names = [_name(i, class_names) for i in ids] if per_box else [None] * n_boxes
        draw_boxes(draw, ltrb, colours, names)
    if keypoints is not None:
        draw_keypoints(draw, np.asarray(keypoints), connections, colours, (scale, scale))
    caption = str(row)
    if ids and not per_box:
        caption += ": " + ", ".join(_name(i, class_names) for i in ids)
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(pil, ((size - out_w) // 2, (size - out_h) // 2))
    return _captioned(canvas, caption, size)


def _name(class_id: int, class_names: list[str]) -> str:
    return class_names[class_id] if 0 <= class_id < len(class_names) else str(class_id)


def _captioned(cell: Image.Image, caption: str, size: int) -> Image.Image:
    out = Image.new("RGB", (size, size + CAPTION), (255, 255, 255))
    out.paste(cell, (0, 0))
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default()
    text = caption if len(caption) <= size // 6 else caption[: size // 6 - 1] + "…"
    draw.text((2, size + 2), text, fill=(40, 40, 40), font=font)
    return out


def _compose(cells: list[Image.Image], cols: int, size: int) -> Image.Image:
    cols = max(1, min(cols, len(cells) or 1))
    lines = max(1, math.ceil(len(cells) / cols))
    cell_h = size + CAPTION
    grid = Image.new(
        "RGB", (cols * size + (cols + 1) * GAP, lines * cell_h + (lines + 1) * GAP), (255, 255, 255)
    )
    for k, cell in enumerate(cells):
        x = GAP + (k % cols) * (size + GAP)
        y = GAP + (k // cols) * (cell_h + GAP)
        grid.paste(cell, (x, y))
    return grid
