"""Drawing what the htypes say onto images: boxes in the tensor's coords, binary masks
per instance, COCO keypoints with their skeleton, class names; one colour per class."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["PALETTE", "boxes_to_ltrb", "colour", "draw_boxes", "draw_keypoints", "tint_masks"]

# 20 colours that stay apart on photos (class k takes PALETTE[k % 20])
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
)  # fmt: skip
MASK_ALPHA = 0.45


def colour(class_id: int) -> tuple[int, int, int]:
    return PALETTE[int(class_id) % len(PALETTE)]


def boxes_to_ltrb(boxes: np.ndarray, coords: dict, width: int, height: int) -> np.ndarray:
    """(N, 4) boxes in ``coords`` (type pixel/fractional, mode LTWH/LTRB/CCWH) as pixel
    (left, top, right, bottom)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    mode = coords.get("mode", "LTWH")
    if mode == "LTWH":
        out = np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)
    elif mode == "CCWH":
        half_w, half_h = b[:, 2] / 2, b[:, 3] / 2
        out = np.stack([b[:, 0] - half_w, b[:, 1] - half_h, b[:, 0] + half_w, b[:, 1] + half_h], 1)
    else:  # LTRB
        out = b.copy()
    if coords.get("type", "pixel") == "fractional":
        out *= np.array([width, height, width, height], dtype=np.float64)
    return out


def tint_masks(
    image: np.ndarray, masks: np.ndarray, colours: Sequence[tuple[int, int, int]]
) -> np.ndarray:
    """``image`` (H, W, 3 uint8) with each instance of ``masks`` (H, W, N bool) blended
    in its colour (where instances overlap, the last one's); pixels outside every mask
    are unchanged."""
    m = np.asarray(masks, dtype=bool)
    if m.ndim == 2:
        m = m[..., None]
    if m.shape[:2] != image.shape[:2] or not m.shape[-1]:
        return image
    last = np.full(m.shape[:2], -1, dtype=np.int16)  # the last instance at each pixel
    for k in range(m.shape[-1]):
        last[m[..., k]] = k
    covered = last >= 0
    if not covered.any():
        return image
    palette = np.array([colours[k % len(colours)] for k in range(m.shape[-1])], np.float32)
    out = image.copy()
    pixels = image[covered].astype(np.float32)
    blended = pixels * (1 - MASK_ALPHA) + palette[last[covered]] * MASK_ALPHA
    out[covered] = blended.round().clip(0, 255).astype(np.uint8)
    return out


def draw_boxes(
    draw: ImageDraw.ImageDraw,
    ltrb: np.ndarray,
    colours: Sequence[tuple[int, int, int]],
    names: Sequence[str | None],
    width: int = 2,
) -> None:
    """Outlines of ``ltrb`` boxes, each with its name above (or inside) its top edge."""
    font = ImageFont.load_default()
    for (left, top, right, bottom), c, name in zip(ltrb.tolist(), colours, names):
        draw.rectangle([left, top, right, bottom], outline=c, width=width)
        if name:
            x0, y0, x1, y1 = draw.textbbox((0, 0), name, font=font)
            y = top - (y1 - y0) - 4 if top - (y1 - y0) - 4 >= 0 else top + 1
            draw.rectangle([left, y, left + (x1 - x0) + 4, y + (y1 - y0) + 3], fill=c)
            dark = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] < 128
            ink = (255, 255, 255) if dark else (0, 0, 0)
            draw.text((left + 2, y - y0 + 1), name, fill=ink, font=font)


def draw_keypoints(
    draw: ImageDraw.ImageDraw,
    keypoints: np.ndarray,
    connections: Sequence[Sequence[int]],
    colours: Sequence[tuple[int, int, int]],
    scale: tuple[float, float] = (1.0, 1.0),
    radius: int = 3,
) -> None:
    """COCO keypoints ((3K, N): x, y, visibility per keypoint and object) as dots, and
    the skeleton's ``connections`` (0-based keypoint pairs) where both ends are labelled."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 2 or kp.shape[0] % 3:
        return
    for n in range(kp.shape[1]):
        xs, ys, vs = kp[0::3, n] * scale[0], kp[1::3, n] * scale[1], kp[2::3, n]
        c = colours[n % len(colours)] if colours else PALETTE[0]
        for a, b in connections:
            if 0 <= a < len(vs) and 0 <= b < len(vs) and vs[a] > 0 and vs[b] > 0:
                draw.line([(xs[a], ys[a]), (xs[b], ys[b])], fill=c, width=2)
        for x, y, v in zip(xs, ys, vs):
            if v > 0:
                draw.ellipse(
                    [x - radius, y - radius, x + radius, y + radius], fill=c, outline=(0, 0, 0)
                )


def placeholder(size: int, text: str) -> Image.Image:
    """A grey cell with a red cross and ``text``: an image that could not be read."""
    cell = Image.new("RGB", (size, size), (235, 235, 235))
    d = ImageDraw.Draw(cell)
    d.line([(0, 0), (size - 1, size - 1)], fill=(200, 0, 0), width=3)
    d.line([(0, size - 1), (size - 1, 0)], fill=(200, 0, 0), width=3)
    d.text((6, 6), text, fill=(120, 0, 0), font=ImageFont.load_default())
    return cell
